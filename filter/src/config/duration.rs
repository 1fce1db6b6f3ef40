//! Durations written as strings: `"250ms"`, `"1s"`, `"5m"`, `"1h"`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// Parses `<digits><unit>` where the unit is `ms`, `s`, `m` or `h`.
///
/// Whole numbers only: `"1.5s"` is refused, write `"1500ms"`. At most 366
/// days: no period, open time or freshness in this filter needs more, and a
/// longer one is a typo (`retry-after` of centuries).
pub fn parse(text: &str) -> Result<Duration, String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => {
            return Err(format!(
                "{text:?} is not a duration like \"250ms\", \"1s\", \"5m\" or \"1h\""
            ))
        }
    };
    let value: u64 = number.parse().map_err(|_| {
        format!("{text:?} is not a duration like \"250ms\", \"1s\", \"5m\" or \"1h\"")
    })?;
    match value.checked_mul(millis_per_unit) {
        Some(millis) if millis <= LONGEST_MILLIS => Ok(Duration::from_millis(millis)),
        _ => Err(format!("{text:?} is longer than 366 days")),
    }
}

/// 366 days in milliseconds.
const LONGEST_MILLIS: u64 = 366 * 24 * 3_600_000;

/// The longest duration any field accepts: 366 days.
pub const LONGEST: Duration = Duration::from_millis(LONGEST_MILLIS);

/// Serde adapter for `#[serde(deserialize_with = "...")]` on `Duration` fields.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_str(DurationVisitor)
}

/// Serde adapter for `Option<Duration>` fields.
pub fn deserialize_opt<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    deserialize(deserializer).map(Some)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration string like \"250ms\", \"1s\", \"5m\" or \"1h\"")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        parse(text).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_malformed_text() {
        for text in ["", "s", "10", "1.5s", "-1s", "1 s", "1d", "1S", "+1s"] {
            assert!(parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn refuses_more_than_366_days() {
        assert_eq!(parse("8784h"), Ok(Duration::from_secs(366 * 24 * 3600)));
        assert_eq!(
            parse("8785h"),
            Err("\"8785h\" is longer than 366 days".to_owned())
        );
        assert!(parse("18446744073709551615ms").is_err());
    }

    #[test]
    fn refuses_overflow() {
        assert!(parse("18446744073709551615h").is_err());
        assert!(parse("99999999999999999999999s").is_err());
    }
}
