//! Firmware versions: dot-separated numbers, ordered numerically, with a release being the first
//! three numbers (7.5.1 of 7.5.1.9).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A firmware version such as `7.5.1.9`, `10.6.0.1` or `2018.4.1.3`.
///
/// Ordering is numeric, component by component; missing trailing components count as zero, so
/// `7.5.1` equals `7.5.1.0`.
#[derive(Clone, Debug)]
pub struct FirmwareVersion(Vec<u32>);

/// Why a version text was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a firmware version: expected numbers separated by dots, e.g. 7.5.1.9")]
pub struct VersionParseError(pub String);

/// The most components a version may have.
const MAX_COMPONENTS: usize = 6;

impl FirmwareVersion {
    /// A version from its numbers; `None` when there are none or more than six.
    pub fn new(components: Vec<u32>) -> Option<Self> {
        (1..=MAX_COMPONENTS)
            .contains(&components.len())
            .then_some(Self(components))
    }

    /// The numbers of the version.
    pub fn components(&self) -> &[u32] {
        &self.0
    }

    /// The release: the first three numbers, missing ones as zero.
    pub fn release(&self) -> [u32; 3] {
        [self.at(0), self.at(1), self.at(2)]
    }

    fn at(&self, index: usize) -> u32 {
        self.0.get(index).copied().unwrap_or(0)
    }
}

impl Ord for FirmwareVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.0.len().max(other.0.len());
        (0..len)
            .map(|i| self.at(i).cmp(&other.at(i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for FirmwareVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for FirmwareVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for FirmwareVersion {}

impl FromStr for FirmwareVersion {
    type Err = VersionParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || VersionParseError(s.to_string());
        let components = s
            .trim()
            .split('.')
            .map(|part| {
                if part.is_empty() || part.len() > 9 || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err());
                }
                part.parse::<u32>().map_err(|_| err())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(components).ok_or_else(err)
    }
}

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

/// Whether two versions, as devices and catalogs spell them, are the same: as numbers when both
/// are (`1.10` and `1.10.0`), otherwise as text, trimmed and ignoring ASCII case (servers'
/// versions such as `U46 v2.90` are not numbers).
pub fn same_version(a: &str, b: &str) -> bool {
    match (a.parse::<FirmwareVersion>(), b.parse::<FirmwareVersion>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.trim().eq_ignore_ascii_case(b.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> FirmwareVersion {
        s.parse().unwrap()
    }

    #[test]
    fn versions_compare_numerically_when_they_can_else_as_text() {
        assert!(same_version("1.10", "1.10.0"));
        assert!(same_version(" U46 v2.90 ", "u46 V2.90"));
        assert!(!same_version("1.1.0", "1.0.0"));
        assert!(!same_version("U46 v2.90", "U46 v2.92"));
    }

    #[test]
    fn orders_numerically_not_lexically() {
        assert!(v("7.5.1.10") > v("7.5.1.9"));
        assert!(v("10.0.0.0") > v("7.5.2.0"));
        assert!(v("2018.4.1.3") > v("10.6.0.1"));
        assert_eq!(v("7.5.1"), v("7.5.1.0"));
    }

    #[test]
    fn release_is_the_first_three_numbers() {
        assert_eq!(v("7.5.1.9").release(), [7, 5, 1]);
        assert_eq!(v("7.5").release(), [7, 5, 0]);
    }

    #[test]
    fn rejects_what_is_not_a_version() {
        for bad in ["", "7..1", "7.5.a", "v7.5", "1.2.3.4.5.6.7", "99999999999"] {
            assert!(bad.parse::<FirmwareVersion>().is_err(), "{bad}");
        }
    }
}
