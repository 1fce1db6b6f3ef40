//! `key`: the parts of a request that pick its bucket or breaker.

use super::request::RequestFacts;

/// One element of a `key` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The client address chosen by `client_ip`.
    ClientIp,
    /// The first value of a request header (lowercase name), as Envoy's own
    /// rate limit descriptors take it; Envoy has already joined the repeated
    /// lines of the headers it knows (`x-forwarded-for` among them).
    Header(String),
    /// All values of a query parameter, percent-decoded, joined by `,`.
    Query(String),
    /// The path without query string.
    Path,
    /// The method.
    Method,
    /// The `:authority`.
    Authority,
    /// Envoy's route name.
    RouteName,
}

/// Builds the key of `request` from `parts`.
///
/// Each part is written as a 4-byte little-endian length and its bytes, so
/// no choice of values can make two different part lists collide (`a|bc`
/// against `ab|c`). A part the request lacks is written empty: everyone
/// who leaves a header out shares one key, which never buys more traffic.
/// An empty `parts` list gives the empty key: one shared bucket.
pub fn build(parts: &[KeyPart], request: &RequestFacts) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    for part in parts {
        let owned;
        let value: &[u8] = match part {
            KeyPart::ClientIp => &request.client_ip,
            KeyPart::Header(name) => request.header_values(name).next().unwrap_or_default(),
            KeyPart::Query(name) => {
                owned = request.query_param(name).unwrap_or_default();
                &owned
            }
            KeyPart::Path => request.path_only(),
            KeyPart::Method => &request.method,
            KeyPart::Authority => &request.authority,
            KeyPart::RouteName => &request.route_name,
        };
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        key.extend_from_slice(&len.to_le_bytes());
        key.extend_from_slice(value.get(..len as usize).unwrap_or(value));
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RequestFacts {
        RequestFacts {
            method: b"GET".to_vec(),
            path: b"/items/7?user=ann&user=bob".to_vec(),
            authority: b"api.example.com".to_vec(),
            headers: vec![
                ("x-api-key".into(), b"k\xff1".to_vec()),
                ("x-api-key".into(), b"k2".to_vec()),
            ],
            route_name: b"items".to_vec(),
            client_ip: b"10.1.2.3".to_vec(),
        }
    }

    #[test]
    fn empty_parts_give_one_shared_key() {
        assert_eq!(build(&[], &request()), Vec::<u8>::new());
    }

    #[test]
    fn every_part_reads_its_fact() {
        let parts = [
            KeyPart::ClientIp,
            KeyPart::Header("x-api-key".into()),
            KeyPart::Query("user".into()),
            KeyPart::Path,
            KeyPart::Method,
            KeyPart::Authority,
            KeyPart::RouteName,
        ];
        let mut want = Vec::new();
        for value in [
            &b"10.1.2.3"[..],
            b"k\xff1",
            b"ann,bob",
            b"/items/7",
            b"GET",
            b"api.example.com",
            b"items",
        ] {
            want.extend_from_slice(&(value.len() as u32).to_le_bytes());
            want.extend_from_slice(value);
        }
        assert_eq!(build(&parts, &request()), want);
    }

    #[test]
    fn missing_parts_are_empty_not_unique() {
        let parts = [
            KeyPart::Header("x-missing".into()),
            KeyPart::Query("nope".into()),
        ];
        let mut other = request();
        other.client_ip = b"10.9.9.9".to_vec();
        assert_eq!(build(&parts, &request()), build(&parts, &other));
        assert_eq!(build(&parts, &request()), vec![0; 8]);
    }

    #[test]
    fn part_boundaries_cannot_be_shifted() {
        let parts = [KeyPart::Header("a".into()), KeyPart::Header("b".into())];
        let left = RequestFacts {
            headers: vec![("a".into(), b"x|".to_vec()), ("b".into(), b"y".to_vec())],
            ..RequestFacts::default()
        };
        let right = RequestFacts {
            headers: vec![("a".into(), b"x".to_vec()), ("b".into(), b"|y".to_vec())],
            ..RequestFacts::default()
        };
        assert_ne!(build(&parts, &left), build(&parts, &right));
    }
}
