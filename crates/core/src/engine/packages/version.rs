//! Dotted product versions (`9.0.5.23`) and the `appliesTo` ranges of maintenance packages
//! (`">=9.0.5.0 <9.0.6.0"`).
//!
//! Invariants: a version is one or more dot-separated decimal numbers; missing trailing parts
//! count as zero, so `9.0.5` and `9.0.5.0` are equal (equality and ordering agree). A range is
//! one or more comparators separated by spaces, all of which must hold.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Why a version or range was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// Not a dotted version.
    #[error("{0:?} is not a dotted version: write numbers separated by dots, e.g. 9.0.5.23")]
    Version(String),
    /// Not a range of comparators.
    #[error(
        "{text:?} is not a version range: {why}; write comparators separated by spaces, e.g. \">=9.0.5.0 <9.0.6.0\""
    )]
    Range {
        /// The range as written.
        text: String,
        /// What is wrong with it.
        why: String,
    },
}

/// A dotted version, e.g. `9.0.5.23`.
#[derive(Clone, Debug)]
pub struct DottedVersion {
    parts: Vec<u64>,
}

impl DottedVersion {
    /// The numbers, most significant first.
    pub fn parts(&self) -> &[u64] {
        &self.parts
    }
}

impl FromStr for DottedVersion {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || VersionError::Version(text.to_string());
        if text.is_empty() || text.len() > 64 {
            return Err(err());
        }
        let parts = text
            .split('.')
            .map(|part| {
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err());
                }
                part.parse::<u64>().map_err(|_| err())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { parts })
    }
}

impl Ord for DottedVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.parts.len().max(other.parts.len());
        (0..len)
            .map(|i| {
                let a = self.parts.get(i).copied().unwrap_or(0);
                let b = other.parts.get(i).copied().unwrap_or(0);
                a.cmp(&b)
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for DottedVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for DottedVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for DottedVersion {}

impl fmt::Display for DottedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: Vec<String> = self.parts.iter().map(u64::to_string).collect();
        f.write_str(&text.join("."))
    }
}

/// How a comparator compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=` (also `==`, or a bare version).
    Eq,
    /// `>=`.
    Ge,
    /// `>`.
    Gt,
    /// `<=`.
    Le,
    /// `<`.
    Lt,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Lt => "<",
        }
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering.is_eq(),
            Op::Ge => ordering.is_ge(),
            Op::Gt => ordering.is_gt(),
            Op::Le => ordering.is_le(),
            Op::Lt => ordering.is_lt(),
        }
    }
}

/// One comparator of a range, e.g. `>=9.0.5.0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparator {
    /// How it compares.
    pub op: Op,
    /// What it compares with.
    pub version: DottedVersion,
}

/// The versions a package applies to: every comparator must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliesTo {
    comparators: Vec<Comparator>,
}

impl AppliesTo {
    /// Whether `version` is in the range.
    pub fn matches(&self, version: &DottedVersion) -> bool {
        self.comparators
            .iter()
            .all(|c| c.op.holds(version.cmp(&c.version)))
    }

    /// The comparators.
    pub fn comparators(&self) -> &[Comparator] {
        &self.comparators
    }
}

impl FromStr for AppliesTo {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let range_err = |why: String| VersionError::Range {
            text: text.to_string(),
            why,
        };
        let mut comparators = Vec::new();
        for token in text.split_whitespace() {
            let (op, rest) = [
                (">=", Op::Ge),
                ("<=", Op::Le),
                ("==", Op::Eq),
                (">", Op::Gt),
                ("<", Op::Lt),
                ("=", Op::Eq),
            ]
            .iter()
            .find_map(|(prefix, op)| token.strip_prefix(prefix).map(|rest| (*op, rest)))
            .unwrap_or((Op::Eq, token));
            let version = rest
                .parse::<DottedVersion>()
                .map_err(|_| range_err(format!("{token:?} is not a comparator on a version")))?;
            comparators.push(Comparator { op, version });
        }
        if comparators.is_empty() {
            return Err(range_err("it is empty".into()));
        }
        Ok(Self { comparators })
    }
}

impl fmt::Display for AppliesTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: Vec<String> = self
            .comparators
            .iter()
            .map(|c| format!("{}{}", c.op.as_str(), c.version))
            .collect();
        f.write_str(&text.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> DottedVersion {
        text.parse().unwrap()
    }

    #[test]
    fn versions_compare_by_number_with_missing_parts_as_zero() {
        assert!(v("9.0.5.23") > v("9.0.5.9"));
        assert_eq!(v("9.0.5"), v("9.0.5.0"));
        assert!(v("10.0") > v("9.9.9.9"));
        assert_eq!(v("9.0.05").to_string(), "9.0.5");
    }

    #[test]
    fn malformed_versions_are_refused() {
        for bad in ["", "9..5", "9.0.x", ".9", "9.", "v9", "9.0.-1"] {
            assert!(bad.parse::<DottedVersion>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_range_needs_every_comparator() {
        let range: AppliesTo = ">=9.0.5.0 <9.0.6.0".parse().unwrap();
        assert!(range.matches(&v("9.0.5.0")));
        assert!(range.matches(&v("9.0.5.22")));
        assert!(!range.matches(&v("9.0.6.0")));
        assert!(!range.matches(&v("9.0.4.9")));
        assert_eq!(range.to_string(), ">=9.0.5.0 <9.0.6.0");
    }

    #[test]
    fn every_operator_and_a_bare_version() {
        let at = |r: &str, x: &str| r.parse::<AppliesTo>().unwrap().matches(&v(x));
        assert!(at("9.0.5.22", "9.0.5.22"));
        assert!(at("=9.0.5.22", "9.0.5.22") && at("==9.0.5.22", "9.0.5.22"));
        assert!(!at("=9.0.5.22", "9.0.5.23"));
        assert!(at(">9.0.5.22", "9.0.5.23") && !at(">9.0.5.22", "9.0.5.22"));
        assert!(at("<=9.0.5.22", "9.0.5.22") && !at("<=9.0.5.22", "9.0.5.23"));
        assert!(at("<9.0.5.22", "9.0.5.21") && !at("<9.0.5.22", "9.0.5.22"));
    }

    #[test]
    fn malformed_ranges_are_refused_naming_the_comparator() {
        let err = ">=9.0.5 ~9.1".parse::<AppliesTo>().unwrap_err();
        assert!(err.to_string().contains("\"~9.1\""), "{err}");
        assert!("".parse::<AppliesTo>().is_err());
        assert!(">=".parse::<AppliesTo>().is_err());
    }
}
