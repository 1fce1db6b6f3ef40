//! Replies built from a stored entry, with `age` and `cache-status`.

use super::entry::Entry;
use super::policy::Headers;

const NANOS: u64 = 1_000_000_000;

/// Response header fields never stored nor replayed: hop-by-hop fields
/// (RFC 9110 §7.6.1), fields recomputed on every answer, and Envoy's
/// per-request additions.
pub fn is_unstored(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "content-length"
            | "age"
            | "set-cookie"
            | "cache-status"
    ) || name.starts_with(':')
        || name.starts_with("x-envoy-")
}

/// The header fields of `headers` worth storing, in order.
pub fn stored_headers(headers: &Headers) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(name, _)| !is_unstored(name))
        .cloned()
        .collect()
}

/// RFC 9111 §4.3.4: a `304` updates the stored header fields it carries
/// (except the unstored ones), and leaves the others.
pub fn merge_304(stored: &[(String, Vec<u8>)], fresh: &Headers) -> Vec<(String, Vec<u8>)> {
    let updates = stored_headers(fresh);
    let mut merged: Vec<(String, Vec<u8>)> = stored
        .iter()
        .filter(|(name, _)| !updates.iter().any(|(n, _)| n == name))
        .cloned()
        .collect();
    merged.extend(updates);
    merged
}

/// A complete reply the filter sends in place of the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The stored status (200).
    pub status: u16,
    /// Every header to send, in order, with exactly one `age`, one
    /// `content-length` and one `cache-status`.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body; `None` for `HEAD` (the `content-length` still gives the
    /// stored body's length).
    pub body: Option<Vec<u8>>,
    /// The `age` sent, seconds.
    pub age: u64,
}

impl Answer {
    /// The reply for `entry` at `now`: `head` drops the body, `status` is
    /// the `cache-status` value (an upstream's own `cache-status` is not
    /// stored, so this is the only one).
    pub fn from_entry(entry: &Entry, now: u64, head: bool, status: &str) -> Self {
        let age = entry.freshness.current_age(now) / NANOS;
        let mut headers = entry.headers.clone();
        headers.push((
            "content-length".into(),
            entry.body.len().to_string().into_bytes(),
        ));
        headers.push(("age".into(), age.to_string().into_bytes()));
        headers.push(("cache-status".into(), status.as_bytes().to_vec()));
        Self {
            status: entry.status,
            headers,
            body: (!head).then(|| entry.body.clone()),
            age,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::request::header_list as h;

    #[test]
    fn drops_hop_by_hop_and_recomputed_fields() {
        let kept = stored_headers(&h(&[
            (":status", "200"),
            ("content-type", "text/plain"),
            ("transfer-encoding", "chunked"),
            ("content-length", "5"),
            ("age", "3"),
            ("x-envoy-upstream-service-time", "1"),
            ("date", "x"),
        ]));
        assert_eq!(kept, h(&[("content-type", "text/plain"), ("date", "x")]));
    }

    #[test]
    fn a_304_replaces_the_fields_it_carries() {
        let stored = h(&[
            ("etag", "\"1\""),
            ("cache-control", "max-age=1"),
            ("x-a", "a"),
        ]);
        let merged = merge_304(
            &stored,
            &h(&[("cache-control", "max-age=9"), ("content-length", "0")]),
        );
        assert_eq!(
            merged,
            h(&[
                ("etag", "\"1\""),
                ("x-a", "a"),
                ("cache-control", "max-age=9")
            ])
        );
    }

    #[test]
    fn an_answer_has_one_age_one_length_and_no_body_for_head() {
        let entry = Entry {
            status: 200,
            body: vec![7; 5000],
            headers: h(&[("content-type", "application/octet-stream")]),
            ..Entry::default()
        };
        let answer = Answer::from_entry(&entry, 4 * NANOS + 1, true, "floodgate; hit");
        assert_eq!(answer.body, None);
        assert_eq!(answer.age, 4);
        let count = |name: &str| answer.headers.iter().filter(|(n, _)| n == name).count();
        assert_eq!(
            (count("age"), count("content-length"), count("cache-status")),
            (1, 1, 1)
        );
        assert!(answer
            .headers
            .contains(&("content-length".into(), b"5000".to_vec())));
        let get = Answer::from_entry(&entry, 0, false, "floodgate; hit");
        assert_eq!(get.body.as_deref(), Some(&entry.body[..]));
    }
}
