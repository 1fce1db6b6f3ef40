//! Reads [`RequestFacts`] from Envoy.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use crate::config::Needs;
use crate::core::request::{ClientIpSource, RequestFacts};

/// Which request headers the configuration looks at, decided once per VM.
///
/// Envoy answers a single-header read with the first value only, so any
/// regular header (whose repeated values are joined) is read with the whole
/// map; pseudo-headers occur once and can be read one by one, which is
/// cheaper than fetching the whole map while they are few.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HeaderRead {
    /// The whole request header map, in one host call.
    #[default]
    Whole,
    /// Only these pseudo-headers, one host call each (none at all when
    /// nothing looks at the request).
    Pseudo {
        /// `:method`.
        method: bool,
        /// `:path`.
        path: bool,
        /// `:authority`.
        authority: bool,
    },
}

/// Single-header reads cost roughly a third of a whole-map fetch: above
/// this many, one fetch is cheaper.
const MAX_SINGLE_READS: usize = 2;

impl HeaderRead {
    /// How to read what `needs` asks of the request headers.
    pub fn plan(needs: Needs) -> Self {
        let singles = [needs.method, needs.path, needs.authority]
            .iter()
            .filter(|&&wanted| wanted)
            .count();
        if needs.headers || singles > MAX_SINGLE_READS {
            return Self::Whole;
        }
        Self::Pseudo {
            method: needs.method,
            path: needs.path,
            authority: needs.authority,
        }
    }
}

/// Reads the request headers `plan` asks for and the properties the
/// configuration needs. Header values stay bytes; nothing here panics on
/// what a client sends.
pub fn read(plan: HeaderRead, client_ip: ClientIpSource, needs: Needs) -> RequestFacts {
    let mut facts = RequestFacts::default();
    match plan {
        HeaderRead::Whole => {
            let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
            for (name, value) in headers {
                match name.as_str() {
                    ":method" => facts.method = value,
                    ":path" => facts.path = value,
                    ":authority" => facts.authority = value,
                    _ if name.starts_with(':') => {}
                    _ => facts.headers.push((name, value)),
                }
            }
        }
        HeaderRead::Pseudo {
            method,
            path,
            authority,
        } => {
            let header = |name: &str| {
                hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name)
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            };
            if method {
                facts.method = header(":method");
            }
            if path {
                facts.path = header(":path");
            }
            if authority {
                facts.authority = header(":authority");
            }
        }
    }
    if needs.route_name {
        facts.route_name = property(&["xds", "route_name"]);
    }
    if needs.client_ip {
        let peer = property(&["source", "address"]);
        let xff = facts.header_joined("x-forwarded-for");
        facts.client_ip = client_ip.resolve(&peer, xff.as_deref());
    }
    facts
}

/// The response's `:status`, if it has a readable one.
pub fn response_status() -> Option<u16> {
    let value = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status")
        .ok()
        .flatten()?;
    std::str::from_utf8(&value).ok()?.parse().ok()
}

/// An Envoy property as bytes; empty when missing or unreadable.
pub fn property(path: &[&str]) -> Vec<u8> {
    hostcalls::get_property(path.to_vec())
        .ok()
        .flatten()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn plan(json: &str) -> HeaderRead {
        HeaderRead::plan(Config::parse(json.as_bytes()).unwrap().needs)
    }

    #[test]
    fn a_breaker_without_match_reads_no_header() {
        let read = plan(r#"{"circuit_breakers": [{"name": "b"}]}"#);
        assert_eq!(
            read,
            HeaderRead::Pseudo {
                method: false,
                path: false,
                authority: false
            }
        );
    }

    #[test]
    fn paths_and_methods_are_read_one_by_one() {
        let read = plan(
            r#"{"circuit_breakers": [{"name": "b", "match": {"path_prefix": "/a", "methods": ["GET"]}}]}"#,
        );
        assert_eq!(
            read,
            HeaderRead::Pseudo {
                method: true,
                path: true,
                authority: false
            }
        );
    }

    #[test]
    fn regular_headers_and_the_cache_read_the_whole_map() {
        let keyed = r#"{"rate_limits": [{"name": "r", "key": ["header:x-api-key"], "limit": 1, "period": "1s"}]}"#;
        assert_eq!(plan(keyed), HeaderRead::Whole);
        assert_eq!(plan(r#"{"cache": {"name": "c"}}"#), HeaderRead::Whole);
        let three = r#"{"rate_limits": [{"name": "r", "key": ["path", "method", "authority"], "limit": 1, "period": "1s"}]}"#;
        assert_eq!(plan(three), HeaderRead::Whole);
    }
}
