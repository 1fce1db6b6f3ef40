//! `Vary` (RFC 9111 §4.1): which request headers select a stored response.
//!
//! Field names are case-insensitive and the list tolerates any whitespace.
//! Request values are compared after normalising each to its list members
//! joined by `,` (§4.1 allows combining field lines and normalising
//! whitespace), so `gzip, br` and `gzip,br` select the same response.

use super::directives::split_list;
use super::policy::{values, Headers};
use crate::core::request::RequestFacts;

/// The request values a stored response was selected by: one per `Vary`
/// name, `None` when the request lacked that header.
pub type Selection = Vec<(String, Option<Vec<u8>>)>;

/// True when any `Vary` line lists `*`: no later request can match.
pub fn is_star(headers: &Headers) -> bool {
    values(headers, "vary").any(|v| split_list(v).any(|name| name == b"*"))
}

/// The lowercase, de-duplicated field names in every `Vary` line.
pub fn names(headers: &Headers) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for value in values(headers, "vary") {
        for name in split_list(value) {
            let name = String::from_utf8_lossy(name).to_ascii_lowercase();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// What `request` sends for each of `names`, normalised.
pub fn select(names: &[String], request: &RequestFacts) -> Selection {
    names
        .iter()
        .map(|name| (name.clone(), normalised(request, name)))
        .collect()
}

/// §4.1: the stored response matches when every nominated header has the
/// same normalised value in `request` (absent matches only absent).
pub fn matches(selection: &Selection, request: &RequestFacts) -> bool {
    selection
        .iter()
        .all(|(name, value)| normalised(request, name) == *value)
}

fn normalised(request: &RequestFacts, name: &str) -> Option<Vec<u8>> {
    let mut lines = request.header_values(name).peekable();
    lines.peek()?;
    let mut joined = Vec::new();
    for member in lines.flat_map(split_list) {
        if !joined.is_empty() {
            joined.push(b',');
        }
        joined.extend_from_slice(member);
    }
    Some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::request::with_headers as request;

    fn response_vary(lines: &[&str]) -> Vec<(String, Vec<u8>)> {
        lines
            .iter()
            .map(|v| ("vary".to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn names_are_case_and_space_insensitive() {
        let h = response_vary(&["Accept-Language,  accept-encoding", "ACCEPT-ENCODING"]);
        assert_eq!(names(&h), vec!["accept-language", "accept-encoding"]);
        assert!(!is_star(&h));
        assert!(is_star(&response_vary(&["accept", " * "])));
    }

    #[test]
    fn a_gzip_variant_never_matches_a_request_without_gzip() {
        let names = vec!["accept-encoding".to_owned()];
        let stored = select(&names, &request(&[("accept-encoding", "gzip")]));
        assert!(matches(&stored, &request(&[("accept-encoding", "gzip")])));
        assert!(!matches(&stored, &request(&[])));
        assert!(!matches(&stored, &request(&[("accept-encoding", "br")])));
        let plain = select(&names, &request(&[]));
        assert!(matches(&plain, &request(&[])));
        assert!(!matches(&plain, &request(&[("accept-encoding", "gzip")])));
    }

    #[test]
    fn values_match_regardless_of_whitespace_and_line_splits() {
        let names = vec!["accept-language".to_owned()];
        let stored = select(&names, &request(&[("accept-language", "en,  fr")]));
        assert!(matches(&stored, &request(&[("accept-language", "en, fr")])));
        assert!(matches(
            &stored,
            &request(&[("accept-language", "en"), ("accept-language", " fr")])
        ));
        assert!(!matches(
            &stored,
            &request(&[("accept-language", "fr, en")])
        ));
    }

    #[test]
    fn users_are_kept_apart() {
        let names = vec!["x-user-id".to_owned()];
        let alice = select(&names, &request(&[("x-user-id", "alice")]));
        assert!(!matches(&alice, &request(&[("x-user-id", "bob")])));
        assert!(matches(&alice, &request(&[("x-user-id", "alice")])));
    }
}
