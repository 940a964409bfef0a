//! Sizes written as Kubernetes quantities (`600Mi`, `2Gi`, `1.5G`, `1024`), in bytes.

/// Why a size was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a size: write a number with an optional unit, e.g. 600Mi, 2Gi or 1500M")]
pub struct SizeParseError(pub String);

/// Parses a quantity into bytes (fractions are rounded up to whole bytes).
pub fn parse_bytes(text: &str) -> Result<u64, SizeParseError> {
    let err = || SizeParseError(text.to_string());
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let multiplier: u64 = match unit {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        _ => return Err(err()),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') || fraction.len() > 9 {
        return Err(err());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| err())?
    };
    let scale = 10u64.pow(u32::try_from(fraction.len()).map_err(|_| err())?);
    let fraction: u64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| err())?
    };
    let whole_bytes = whole.checked_mul(multiplier).ok_or_else(err)?;
    let fraction_bytes = u128::from(fraction) * u128::from(multiplier);
    let fraction_bytes =
        u64::try_from(fraction_bytes.div_ceil(u128::from(scale))).map_err(|_| err())?;
    whole_bytes.checked_add(fraction_bytes).ok_or_else(err)
}

/// A byte count in the largest binary unit that keeps it readable, e.g. `600Mi`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 5] = [
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    for (unit, size) in UNITS {
        if bytes >= size {
            return format!("{:.1}{unit}", bytes as f64 / size as f64);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_and_decimal_units() {
        assert_eq!(parse_bytes("600Mi"), Ok(600 << 20));
        assert_eq!(parse_bytes("2Gi"), Ok(2 << 30));
        assert_eq!(parse_bytes("1.5G"), Ok(1_500_000_000));
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("0.5Ki"), Ok(512));
        assert_eq!(parse_bytes(".5k"), Ok(500));
    }

    #[test]
    fn rejects_what_is_not_a_size() {
        for bad in [
            "",
            "Mi",
            "2GB",
            "-1Gi",
            "1.2.3",
            "1e3",
            "99999999999999999999",
            "20000000Pi",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_readably() {
        assert_eq!(format_bytes(600 << 20), "600Mi");
        assert_eq!(format_bytes(1536 << 20), "1536Mi");
        assert_eq!(format_bytes((1 << 30) + 1), "1.0Gi");
        assert_eq!(format_bytes(100), "100");
    }
}
