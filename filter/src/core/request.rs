//! What the filter knows about a request, read once from the host.
//!
//! Everything a client sends is kept as bytes: header values, the path and
//! the authority need not be UTF-8, and nothing here may panic on them.

use std::net::IpAddr;

/// The facts about one request that matching and keying look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFacts {
    /// `:method`, as sent.
    pub method: Vec<u8>,
    /// `:path`, including the query string.
    pub path: Vec<u8>,
    /// `:authority` (the `Host` header on HTTP/1.1).
    pub authority: Vec<u8>,
    /// Regular headers with lowercase names, in the order received. A header
    /// sent several times appears several times.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Envoy's route name (`xds.route_name`), empty when the route has none.
    pub route_name: Vec<u8>,
    /// The client address the configuration chose (see [`ClientIpSource`]),
    /// as text; empty when unknown.
    pub client_ip: Vec<u8>,
}

impl RequestFacts {
    /// The path without its query string.
    pub fn path_only(&self) -> &[u8] {
        match self.path.iter().position(|&b| b == b'?') {
            Some(end) => self.path.get(..end).unwrap_or(&self.path),
            None => &self.path,
        }
    }

    /// The query string after `?`, without the fragment; empty when absent.
    pub fn query(&self) -> &[u8] {
        let Some(start) = self.path.iter().position(|&b| b == b'?') else {
            return &[];
        };
        let rest = self.path.get(start + 1..).unwrap_or(&[]);
        match rest.iter().position(|&b| b == b'#') {
            Some(end) => rest.get(..end).unwrap_or(rest),
            None => rest,
        }
    }

    /// Every value of header `name` (lowercase), in the order received.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The values of header `name` joined by `,` in the order received, or
    /// `None` when the header is absent. This is how RFC 9110 §5.3 combines
    /// repeated fields, and it keys several values deterministically.
    pub fn header_joined(&self, name: &str) -> Option<Vec<u8>> {
        let mut values = self.header_values(name);
        let mut joined = values.next()?.to_vec();
        for value in values {
            joined.push(b',');
            joined.extend_from_slice(value);
        }
        Some(joined)
    }

    /// The values of query parameter `name`, percent-decoded and joined by
    /// `,`, or `None` when absent. Names are compared after decoding, so
    /// `api%5Fkey` and `api_key` are the same parameter.
    pub fn query_param(&self, name: &str) -> Option<Vec<u8>> {
        let mut joined: Option<Vec<u8>> = None;
        for pair in self.query().split(|&b| b == b'&') {
            let (raw_name, raw_value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (
                    pair.get(..eq).unwrap_or(&[]),
                    pair.get(eq + 1..).unwrap_or(&[]),
                ),
                None => (pair, &[][..]),
            };
            if percent_decode(raw_name) != name.as_bytes() {
                continue;
            }
            let value = percent_decode(raw_value);
            match &mut joined {
                Some(all) => {
                    all.push(b',');
                    all.extend_from_slice(&value);
                }
                None => joined = Some(value),
            }
        }
        joined
    }
}

/// Decodes `%XX` escapes and `+` (a space in form encoding). A `%` not
/// followed by two hex digits is kept as it is.
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&byte) = input.get(i) {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = input.get(i + 1).and_then(|&b| hex_value(b));
                let lo = input.get(i + 2).and_then(|&b| hex_value(b));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(byte);
            }
            _ => out.push(byte),
        }
        i += 1;
    }
    out
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Where the client's address comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientIpSource {
    /// Envoy's downstream remote address, which already honours the
    /// connection manager's own `use_remote_address` and XFF settings.
    #[default]
    Peer,
    /// The `trusted_hops`-th address from the right of `X-Forwarded-For`.
    /// With fewer addresses than that, the peer address is used, so a
    /// client cannot choose its own key by sending a short header.
    XForwardedFor {
        /// At least 1: 1 is the rightmost address.
        trusted_hops: u32,
    },
}

impl ClientIpSource {
    /// The client address for a request, from the peer's `ip:port` (as in
    /// Envoy's `source.address`) and its `X-Forwarded-For` values.
    pub fn resolve(self, peer: &[u8], xff: Option<&[u8]>) -> Vec<u8> {
        match (self, xff) {
            (ClientIpSource::XForwardedFor { trusted_hops }, Some(xff)) => {
                let hop = usize::try_from(trusted_hops).unwrap_or(usize::MAX);
                xff.rsplit(|&b| b == b',')
                    .nth(hop.saturating_sub(1))
                    .map(|entry| normalize_ip(entry.trim_ascii()))
                    .unwrap_or_else(|| strip_port(peer))
            }
            _ => strip_port(peer),
        }
    }
}

/// `1.2.3.4:80` and `[::1]:80` become `1.2.3.4` and `::1`; anything that does
/// not parse is kept as it is.
fn strip_port(address: &[u8]) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(address) else {
        return address.to_vec();
    };
    if let Ok(socket) = text.parse::<std::net::SocketAddr>() {
        return socket.ip().to_string().into_bytes();
    }
    normalize_ip(address)
}

/// Writes an address in its canonical form, so `::0001` and `::1` share a key.
fn normalize_ip(entry: &[u8]) -> Vec<u8> {
    std::str::from_utf8(entry)
        .ok()
        .and_then(|text| text.parse::<IpAddr>().ok())
        .map(|ip| ip.to_string().into_bytes())
        .unwrap_or_else(|| entry.to_vec())
}

/// Header pairs written as text, as the tests write them.
#[cfg(test)]
pub(crate) fn header_list(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// A request with only these headers, for tests.
#[cfg(test)]
pub(crate) fn with_headers(list: &[(&str, &str)]) -> RequestFacts {
    RequestFacts {
        headers: header_list(list),
        ..RequestFacts::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_path(path: &str) -> RequestFacts {
        RequestFacts {
            path: path.as_bytes().to_vec(),
            ..RequestFacts::default()
        }
    }

    #[test]
    fn splits_path_and_query() {
        let request = with_path("/a/b?x=1&y=2#frag");
        assert_eq!(request.path_only(), b"/a/b");
        assert_eq!(request.query(), b"x=1&y=2");
        assert_eq!(with_path("/plain").query(), b"");
    }

    #[test]
    fn decodes_query_parameters() {
        let request = with_path("/?api%5Fkey=a%20b&other=1&api_key=c+d&broken=%zz");
        assert_eq!(request.query_param("api_key"), Some(b"a b,c d".to_vec()));
        assert_eq!(request.query_param("broken"), Some(b"%zz".to_vec()));
        assert_eq!(request.query_param("missing"), None);
        assert_eq!(with_path("/?flag").query_param("flag"), Some(vec![]));
    }

    #[test]
    fn joins_repeated_headers_in_order() {
        let request = RequestFacts {
            headers: vec![
                ("x-a".into(), b"1".to_vec()),
                ("x-b".into(), b"\xff\xfe".to_vec()),
                ("x-a".into(), b"2".to_vec()),
            ],
            ..RequestFacts::default()
        };
        assert_eq!(request.header_joined("x-a"), Some(b"1,2".to_vec()));
        assert_eq!(request.header_joined("x-b"), Some(b"\xff\xfe".to_vec()));
        assert_eq!(request.header_joined("x-c"), None);
    }

    #[test]
    fn peer_source_ignores_forwarded_for() {
        let ip = ClientIpSource::Peer.resolve(b"10.0.0.7:5555", Some(b"1.1.1.1"));
        assert_eq!(ip, b"10.0.0.7");
        assert_eq!(ClientIpSource::Peer.resolve(b"[::1]:80", None), b"::1");
    }

    #[test]
    fn forwarded_for_counts_hops_from_the_right() {
        let xff = Some(&b"6.6.6.6, 1.1.1.1 ,2.2.2.2"[..]);
        let one = ClientIpSource::XForwardedFor { trusted_hops: 1 };
        let two = ClientIpSource::XForwardedFor { trusted_hops: 2 };
        let nine = ClientIpSource::XForwardedFor { trusted_hops: 9 };
        assert_eq!(one.resolve(b"9.9.9.9:1", xff), b"2.2.2.2");
        assert_eq!(two.resolve(b"9.9.9.9:1", xff), b"1.1.1.1");
        assert_eq!(nine.resolve(b"9.9.9.9:1", xff), b"9.9.9.9");
        assert_eq!(one.resolve(b"9.9.9.9:1", None), b"9.9.9.9");
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let hostile: &[u8] = b"\xff,%,\x00,[::1,::0001";
        let source = ClientIpSource::XForwardedFor { trusted_hops: 1 };
        assert_eq!(source.resolve(b"\xff\xfe", Some(hostile)), b"::1");
        assert_eq!(source.resolve(b"\xff\xfe", None), b"\xff\xfe");
        assert_eq!(percent_decode(b"%"), b"%");
        assert_eq!(percent_decode(b"%4"), b"%4");
        assert_eq!(percent_decode(b"%41%4a"), b"AJ");
    }
}
