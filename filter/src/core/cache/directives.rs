//! `Cache-Control` directives (RFC 9111 §5.2) and the other header values
//! the cache reads: `Age`, `Vary`, comma-separated lists.

/// RFC 9111 §1.2.2: a delta-seconds too large to represent is taken as
/// 2^31 seconds (about 68 years).
const DELTA_SECONDS_CAP: u64 = 1 << 31;

/// The `Cache-Control` directives the cache acts on, from one message.
///
/// Directive names are case-insensitive (§5.2). When a directive with an
/// argument repeats, the first occurrence wins (§4.2.1). An argument that is
/// not a valid delta-seconds reads as 0, which makes the response stale at
/// once rather than fresh for a length nobody meant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    /// `max-age`, seconds.
    pub max_age: Option<u64>,
    /// `s-maxage`, seconds (response only).
    pub s_maxage: Option<u64>,
    /// `stale-if-error` (RFC 5861 §4), seconds.
    pub stale_if_error: Option<u64>,
    /// `no-store`.
    pub no_store: bool,
    /// `no-cache`, with or without field names (the qualified form is
    /// treated as unqualified: stricter, never wrong).
    pub no_cache: bool,
    /// `private`, with or without field names (likewise).
    pub private: bool,
    /// `public`.
    pub public: bool,
    /// `must-revalidate`.
    pub must_revalidate: bool,
    /// `proxy-revalidate`.
    pub proxy_revalidate: bool,
}

impl CacheControl {
    /// Parses every `Cache-Control` field line of a message.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut cc = Self::default();
        for value in values {
            for item in split_list(value) {
                cc.apply(item);
            }
        }
        cc
    }

    fn apply(&mut self, item: &[u8]) {
        let (name, argument) = match item.iter().position(|&b| b == b'=') {
            Some(eq) => (
                trim(item.get(..eq).unwrap_or_default()),
                Some(unquote(trim(item.get(eq + 1..).unwrap_or_default()))),
            ),
            None => (item, None),
        };
        let name = name.to_ascii_lowercase();
        let seconds = || argument.map_or(0, delta_seconds);
        match name.as_slice() {
            b"max-age" => {
                self.max_age.get_or_insert_with(seconds);
            }
            b"s-maxage" => {
                self.s_maxage.get_or_insert_with(seconds);
            }
            b"stale-if-error" => {
                self.stale_if_error.get_or_insert_with(seconds);
            }
            b"no-store" => self.no_store = true,
            b"no-cache" => self.no_cache = true,
            b"private" => self.private = true,
            b"public" => self.public = true,
            b"must-revalidate" => self.must_revalidate = true,
            b"proxy-revalidate" => self.proxy_revalidate = true,
            _ => {}
        }
    }
}

/// RFC 9111 §1.2.2 delta-seconds: digits only, capped at 2^31; anything
/// else reads as 0.
pub fn delta_seconds(text: &[u8]) -> u64 {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    let mut value: u64 = 0;
    for digit in text {
        value = value
            .saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'));
        if value >= DELTA_SECONDS_CAP {
            return DELTA_SECONDS_CAP;
        }
    }
    value
}

/// `Age` (RFC 9111 §5.1): the first field line's delta-seconds, `None`
/// when absent or invalid (an invalid `Age` is ignored).
pub fn age<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Option<u64> {
    let first = split_list(values.next()?).next()?;
    if first.is_empty() || !first.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(delta_seconds(first))
}

/// The members of a comma-separated list (RFC 9110 §5.6.1), trimmed of
/// optional whitespace, empty members dropped. Commas inside a quoted
/// string do not split it.
pub fn split_list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut members = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, &b) in value.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == b',' && !quoted {
            members.push(trim(value.get(start..i).unwrap_or_default()));
            start = i + 1;
        }
    }
    members.push(trim(value.get(start..).unwrap_or_default()));
    members.into_iter().filter(|m| !m.is_empty())
}

/// Strips spaces and tabs from both ends.
pub fn trim(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |e| e + 1);
    bytes.get(start..end).unwrap_or_default()
}

fn unquote(bytes: &[u8]) -> &[u8] {
    match bytes {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(values: &[&str]) -> CacheControl {
        CacheControl::parse(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn reads_every_directive_case_insensitively() {
        let c = cc(&[
            "Public, MAX-AGE=60, s-maxage=\"30\"",
            "must-revalidate,no-cache",
        ]);
        assert!(c.public && c.must_revalidate && c.no_cache);
        assert_eq!((c.max_age, c.s_maxage), (Some(60), Some(30)));
        let c = cc(&["private=\"set-cookie, x\", no-store, proxy-revalidate, stale-if-error=300"]);
        assert!(c.private && c.no_store && c.proxy_revalidate);
        assert_eq!(c.stale_if_error, Some(300));
        assert!(!c.public);
    }

    #[test]
    fn the_first_of_repeated_directives_wins() {
        assert_eq!(cc(&["max-age=10", "max-age=99"]).max_age, Some(10));
    }

    #[test]
    fn invalid_or_huge_delta_seconds() {
        assert_eq!(cc(&["max-age=abc"]).max_age, Some(0));
        assert_eq!(cc(&["max-age=-5"]).max_age, Some(0));
        assert_eq!(cc(&["max-age"]).max_age, Some(0));
        assert_eq!(
            cc(&["max-age=99999999999999999999999"]).max_age,
            Some(1 << 31)
        );
    }

    #[test]
    fn age_header() {
        assert_eq!(age([&b"100"[..]].into_iter()), Some(100));
        assert_eq!(age([&b" 7 , 9"[..]].into_iter()), Some(7));
        assert_eq!(age([&b"x"[..]].into_iter()), None);
        assert_eq!(age(std::iter::empty()), None);
    }

    #[test]
    fn lists_split_outside_quotes_only() {
        let members: Vec<_> = split_list(b" a ,, b=\"x, \\\"y\" ,c\t").collect();
        assert_eq!(members, vec![&b"a"[..], b"b=\"x, \\\"y\"", b"c"]);
        assert_eq!(split_list(b"").count(), 0);
    }
}
