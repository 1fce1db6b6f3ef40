//! Reads [`RequestFacts`] from Envoy.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use crate::config::Needs;
use crate::core::request::{ClientIpSource, RequestFacts};

/// Which request headers the configuration looks at, decided once per VM.
///
/// Envoy answers a single-header read with the first value, and a
/// whole-map fetch costs roughly three single reads (it copies every header
/// across the VM boundary). So the map is fetched whole only when some
/// feature looks at every value of any header (a `match` on headers, the
/// cache) or when more than [`MAX_SINGLE_READS`] headers are needed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HeaderRead {
    /// The whole request header map, in one host call.
    #[default]
    Whole,
    /// Only these headers, one host call each (none at all when nothing
    /// looks at the request).
    Singles {
        /// `:method`.
        method: bool,
        /// `:path`.
        path: bool,
        /// `:authority`.
        authority: bool,
        /// Regular headers, lowercase, read for their first value.
        headers: Vec<String>,
    },
}

/// Above this many headers, one whole-map fetch is cheaper.
const MAX_SINGLE_READS: usize = 2;

impl HeaderRead {
    /// How to read what `needs` asks of the request headers.
    pub fn plan(needs: &Needs) -> Self {
        let pseudo = [needs.method, needs.path, needs.authority]
            .iter()
            .filter(|&&wanted| wanted)
            .count();
        if needs.all_headers || pseudo + needs.header_names.len() > MAX_SINGLE_READS {
            return Self::Whole;
        }
        Self::Singles {
            method: needs.method,
            path: needs.path,
            authority: needs.authority,
            headers: needs.header_names.clone(),
        }
    }
}

/// Reads the request headers `plan` asks for and the properties the
/// configuration needs. Header values stay bytes; nothing here panics on
/// what a client sends.
pub fn read(plan: &HeaderRead, client_ip: ClientIpSource, needs: &Needs) -> RequestFacts {
    let mut facts = RequestFacts::default();
    match plan {
        HeaderRead::Whole => {
            let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
            for (name, value) in headers {
                match name.as_str() {
                    ":method" => facts.method = value,
                    ":path" => facts.path = value,
                    ":authority" => {
                        // Envoy keeps `Host` as `:authority`, and answers a
                        // single read of `host` with it: so must the map.
                        facts.headers.push(("host".to_owned(), value.clone()));
                        facts.authority = value;
                    }
                    _ if name.starts_with(':') => {}
                    _ => facts.headers.push((name, value)),
                }
            }
        }
        HeaderRead::Singles {
            method,
            path,
            authority,
            headers,
        } => {
            let header = |name: &str| {
                hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name)
                    .ok()
                    .flatten()
            };
            if *method {
                facts.method = header(":method").unwrap_or_default();
            }
            if *path {
                facts.path = header(":path").unwrap_or_default();
            }
            if *authority {
                facts.authority = header(":authority").unwrap_or_default();
            }
            for name in headers {
                if let Some(value) = header(name) {
                    facts.headers.push((name.clone(), value));
                }
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
        HeaderRead::plan(&Config::parse(json.as_bytes()).unwrap().needs)
    }

    fn singles(method: bool, path: bool, authority: bool, headers: &[&str]) -> HeaderRead {
        HeaderRead::Singles {
            method,
            path,
            authority,
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
        }
    }

    #[test]
    fn a_breaker_without_match_reads_no_header() {
        let read = plan(r#"{"circuit_breakers": [{"name": "b"}]}"#);
        assert_eq!(read, singles(false, false, false, &[]));
    }

    #[test]
    fn paths_and_methods_are_read_one_by_one() {
        let read = plan(
            r#"{"circuit_breakers": [{"name": "b", "match": {"path_prefix": "/a", "methods": ["GET"]}}]}"#,
        );
        assert_eq!(read, singles(true, true, false, &[]));
    }

    #[test]
    fn key_headers_and_forwarded_for_are_read_one_by_one() {
        let keyed = r#"{"rate_limits": [{"name": "r", "key": ["header:x-api-key"], "limit": 1, "period": "1s"},
                                         {"name": "s", "key": ["header:x-api-key"], "limit": 1, "period": "1s"}]}"#;
        assert_eq!(plan(keyed), singles(false, false, false, &["x-api-key"]));
        let forwarded = r#"{"client_ip": {"from": "x-forwarded-for", "trusted_hops": 1},
            "rate_limits": [{"name": "r", "key": ["client_ip"], "limit": 1, "period": "1s"}]}"#;
        assert_eq!(
            plan(forwarded),
            singles(false, false, false, &["x-forwarded-for"])
        );
    }

    #[test]
    fn header_matches_the_cache_and_many_reads_take_the_whole_map() {
        let matched = r#"{"rate_limits": [{"name": "r", "match": {"headers": {"x-a": "1"}}, "limit": 1, "period": "1s"}]}"#;
        assert_eq!(plan(matched), HeaderRead::Whole);
        assert_eq!(plan(r#"{"cache": {"name": "c"}}"#), HeaderRead::Whole);
        let three = r#"{"rate_limits": [{"name": "r", "key": ["path", "method", "header:x-a"], "limit": 1, "period": "1s"}]}"#;
        assert_eq!(plan(three), HeaderRead::Whole);
    }
}
