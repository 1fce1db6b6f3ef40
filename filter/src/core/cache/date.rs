//! HTTP dates (RFC 9110 §5.6.7) as seconds since the Unix epoch.
//!
//! Recipients must accept all three formats: IMF-fixdate
//! (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form
//! (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`).
//! The weekday is not checked. Anything else is `None`.

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Parses an HTTP date into seconds since the epoch; `None` if invalid or
/// before 1970.
pub fn parse(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (day, month, year, time) = if let Some((_, rest)) = text.split_once(", ") {
        let rest = rest.strip_suffix(" GMT")?;
        if let Some((date, time)) = rest.split_once(' ').filter(|(d, _)| d.contains('-')) {
            // RFC 850: 06-Nov-94; two-digit years before 70 are 20xx.
            let mut parts = date.split('-');
            let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
            let year: u64 = digits(year, 2)?;
            let year = if year < 70 { 2000 + year } else { 1900 + year };
            (digits(day, 2)?, month, year, time)
        } else {
            let mut parts = rest.splitn(4, ' ');
            let (day, month, year, time) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            (digits(day, 2)?, month, digits(year, 4)?, time)
        }
    } else {
        // asctime: "Sun Nov  6 08:49:37 1994"
        let mut parts = text.split_whitespace();
        let _weekday = parts.next()?;
        let (month, day, time, year) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || day.is_empty() || day.len() > 2 {
            return None;
        }
        (day.parse().ok()?, month, digits(year, 4)?, time)
    };
    let month = MONTHS
        .iter()
        .position(|m| m.as_slice() == month.as_bytes())? as u64
        + 1;
    let mut clock = time.split(':');
    let (hour, minute, second) = (
        digits(clock.next()?, 2)?,
        digits(clock.next()?, 2)?,
        digits(clock.next()?, 2)?,
    );
    if clock.next().is_some() || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn digits(text: &str, len: usize) -> Option<u64> {
    if text.len() == len && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date; `None` before 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let year = if month <= 2 {
        year.checked_sub(1)?
    } else {
        year
    };
    let era = year / 400;
    let year_of_era = year % 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_6_1994: u64 = 784_111_777;

    #[test]
    fn reads_all_three_formats() {
        assert_eq!(parse(b"Sun, 06 Nov 1994 08:49:37 GMT"), Some(NOV_6_1994));
        assert_eq!(parse(b"Sunday, 06-Nov-94 08:49:37 GMT"), Some(NOV_6_1994));
        assert_eq!(parse(b"Sun Nov  6 08:49:37 1994"), Some(NOV_6_1994));
    }

    #[test]
    fn reads_epoch_and_leap_days() {
        assert_eq!(parse(b"Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse(b"Thu, 29 Feb 2024 12:00:00 GMT"), Some(1_709_208_000));
        assert_eq!(parse(b"Wed, 03 Dec 2025 13:00:05 GMT"), Some(1_764_766_805));
    }

    #[test]
    fn refuses_garbage_without_panicking() {
        for text in [
            "",
            "0",
            "-1",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun Nov 6 08:49:37",
            "\u{e9}\u{e9}",
        ] {
            assert_eq!(parse(text.as_bytes()), None, "{text:?}");
        }
        assert_eq!(parse(&[0xff, 0xfe]), None);
    }
}
