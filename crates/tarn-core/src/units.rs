//! Sizes and durations written by people (`20GiB`, `500MB`, `30d`, `12h`), for
//! `tarn cache prune` and the `tarn.maxSize` setting.
//!
//! A unit is always required: `20` is refused rather than read as 20 bytes or 20 seconds,
//! because a cache pruned to 20 bytes is an expensive typo.

/// A size or duration that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Nothing but blanks.
    #[error("empty value")]
    Empty,
    /// A number without a unit.
    #[error("{0:?} has no unit; write it with one, e.g. {1}")]
    NoUnit(String, &'static str),
    /// A unit that is not known.
    #[error("{text:?}: unknown unit {unit:?} (known: {known})")]
    UnknownUnit {
        /// The value as given.
        text: String,
        /// The unit as given.
        unit: String,
        /// The units accepted.
        known: &'static str,
    },
    /// The number part is not a non-negative decimal number.
    #[error("{0:?}: expected a non-negative number followed by a unit")]
    BadNumber(String),
    /// The value does not fit in 64 bits.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

const SIZE_UNITS: &str = "B, kB, MB, GB, TB (powers of 1000), KiB, MiB, GiB, TiB (powers of 1024)";
const DURATION_UNITS: &str = "s, m (minutes), h, d, w";

/// Splits `"20GiB"` into `("20", "GiB")` (blanks between them allowed).
fn split(text: &str) -> Result<(&str, &str), UnitError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(UnitError::Empty);
    }
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(end);
    if number.is_empty() || number.starts_with('.') || number.matches('.').count() > 1 {
        return Err(UnitError::BadNumber(text.to_string()));
    }
    Ok((number, unit.trim()))
}

/// `number × factor`, exactly for whole numbers and rounded down for fractions.
fn scale(text: &str, number: &str, factor: u64) -> Result<u64, UnitError> {
    let too_large = || UnitError::TooLarge(text.to_string());
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let whole: u64 = whole.parse().map_err(|_| too_large())?;
    let mut value = whole.checked_mul(factor).ok_or_else(too_large)?;
    if !frac.is_empty() {
        // At most 9 fractional digits matter for any factor up to 2^40.
        let digits = &frac[..frac.len().min(9)];
        let scale = 10u64.pow(digits.len() as u32);
        let f: u64 = digits.parse().map_err(|_| too_large())?;
        value = value
            .checked_add((f as u128 * factor as u128 / scale as u128) as u64)
            .ok_or_else(too_large)?;
    }
    Ok(value)
}

/// Parses a size with its unit: `20GiB`, `500MB`, `1.5 TB`, `0B`. Units are
/// case-insensitive (`gib` = `GiB`); decimal units are powers of 1000, binary ones of 1024.
pub fn parse_human_size(text: &str) -> Result<u64, UnitError> {
    let (number, unit) = split(text)?;
    if unit.is_empty() {
        return Err(UnitError::NoUnit(text.trim().to_string(), "20GiB or 500MB"));
    }
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => {
            return Err(UnitError::UnknownUnit {
                text: text.trim().to_string(),
                unit: unit.to_string(),
                known: SIZE_UNITS,
            })
        }
    };
    scale(text.trim(), number, factor)
}

/// Parses a duration with its unit: `30d`, `12h`, `90m`, `45s`, `2w`, `1.5h`.
pub fn parse_human_duration(text: &str) -> Result<std::time::Duration, UnitError> {
    let (number, unit) = split(text)?;
    if unit.is_empty() {
        return Err(UnitError::NoUnit(text.trim().to_string(), "30d or 12h"));
    }
    let factor: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(UnitError::UnknownUnit {
                text: text.trim().to_string(),
                unit: unit.to_string(),
                known: DURATION_UNITS,
            })
        }
    };
    // Milliseconds, so that `1.5h` is exact.
    let millis = scale(text.trim(), number, factor * 1_000)?;
    Ok(std::time::Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sizes_need_a_known_unit() {
        assert_eq!(parse_human_size("20GiB"), Ok(20 << 30));
        assert_eq!(parse_human_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_human_size(" 1.5 gb "), Ok(1_500_000_000));
        assert_eq!(parse_human_size("0B"), Ok(0));
        assert_eq!(parse_human_size("3kib"), Ok(3072));
        assert!(matches!(parse_human_size("20"), Err(UnitError::NoUnit(..))));
        assert_eq!(
            parse_human_size("20").unwrap_err().to_string(),
            "\"20\" has no unit; write it with one, e.g. 20GiB or 500MB"
        );
        assert!(matches!(
            parse_human_size("20GB2"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_human_size("20 parsecs"),
            Err(UnitError::UnknownUnit { .. })
        ));
        for bad in ["-1GB", "GB", ".5GB", "1..2GB", "1.2.3GB"] {
            assert!(
                matches!(parse_human_size(bad), Err(UnitError::BadNumber(_))),
                "{bad}"
            );
        }
        assert_eq!(parse_human_size("   "), Err(UnitError::Empty));
        assert!(matches!(
            parse_human_size("99999999999TiB"),
            Err(UnitError::TooLarge(_))
        ));
    }

    #[test]
    fn durations_need_a_known_unit() {
        assert_eq!(
            parse_human_duration("30d"),
            Ok(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            parse_human_duration("12h"),
            Ok(Duration::from_secs(12 * 3_600))
        );
        assert_eq!(parse_human_duration("1.5h"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_human_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(
            parse_human_duration("2w"),
            Ok(Duration::from_secs(14 * 86_400))
        );
        assert!(matches!(
            parse_human_duration("30"),
            Err(UnitError::NoUnit(..))
        ));
        assert!(matches!(
            parse_human_duration("30 days"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_human_duration("1H"),
            Err(UnitError::UnknownUnit { .. })
        ));
    }
}
