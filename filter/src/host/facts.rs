//! Reads [`RequestFacts`] from Envoy.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use crate::config::Needs;
use crate::core::request::{ClientIpSource, RequestFacts};

/// Whether a request's headers are fetched as the whole map, decided once
/// per VM.
///
/// Envoy answers a single-header read with the first value, and a
/// whole-map fetch costs roughly three single reads (it copies every header
/// across the VM boundary). So the map is fetched whole only when some
/// feature looks at every value of any header (a `match` on headers, the
/// cache) or when more than [`MAX_SINGLE_READS`] headers are needed; else
/// each header `needs` names is read on its own (none at all when nothing
/// looks at the request).
pub fn whole_map(needs: &Needs) -> bool {
    let pseudo = [needs.method, needs.path, needs.authority]
        .iter()
        .filter(|&&wanted| wanted)
        .count();
    needs.all_headers || pseudo + needs.header_names.len() > MAX_SINGLE_READS
}

/// Above this many headers, one whole-map fetch is cheaper.
const MAX_SINGLE_READS: usize = 2;

/// Reads the request headers `needs` asks for, the whole map when `whole`
/// (see [`whole_map`]), and the properties the configuration needs. Header
/// values stay bytes; nothing here panics on what a client sends.
pub fn read(whole: bool, client_ip: ClientIpSource, needs: &Needs) -> RequestFacts {
    let mut facts = RequestFacts::default();
    if whole {
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
    } else {
        let header = |name: &str| {
            hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name)
                .ok()
                .flatten()
        };
        if needs.method {
            facts.method = header(":method").unwrap_or_default();
        }
        if needs.path {
            facts.path = header(":path").unwrap_or_default();
        }
        if needs.authority {
            facts.authority = header(":authority").unwrap_or_default();
        }
        for name in &needs.header_names {
            if let Some(value) = header(name) {
                facts.headers.push((name.clone(), value));
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

    fn needs(json: &str) -> Needs {
        Config::parse(json.as_bytes()).unwrap().needs
    }

    #[test]
    fn a_breaker_without_match_reads_no_header() {
        let needs = needs(r#"{"circuit_breakers": [{"name": "b"}]}"#);
        assert!(!whole_map(&needs));
        assert_eq!(needs.header_names, Vec::<String>::new());
        assert!(!needs.method && !needs.path && !needs.authority);
    }

    #[test]
    fn paths_and_methods_are_read_one_by_one() {
        let needs = needs(
            r#"{"circuit_breakers": [{"name": "b", "match": {"path_prefix": "/a", "methods": ["GET"]}}]}"#,
        );
        assert!(!whole_map(&needs));
        assert!(needs.method && needs.path && !needs.authority);
    }

    #[test]
    fn key_headers_and_forwarded_for_are_read_one_by_one() {
        let keyed = needs(
            r#"{"rate_limits": [{"name": "r", "key": ["header:x-api-key"], "limit": 1, "period": "1s"},
                                {"name": "s", "key": ["header:x-api-key"], "limit": 1, "period": "1s"}]}"#,
        );
        assert!(!whole_map(&keyed));
        assert_eq!(keyed.header_names, ["x-api-key"]);
        let forwarded = needs(
            r#"{"client_ip": {"from": "x-forwarded-for", "trusted_hops": 1},
                "rate_limits": [{"name": "r", "key": ["client_ip"], "limit": 1, "period": "1s"}]}"#,
        );
        assert!(!whole_map(&forwarded));
        assert_eq!(forwarded.header_names, ["x-forwarded-for"]);
    }

    #[test]
    fn header_matches_the_cache_and_many_reads_take_the_whole_map() {
        let matched = r#"{"rate_limits": [{"name": "r", "match": {"headers": {"x-a": "1"}}, "limit": 1, "period": "1s"}]}"#;
        assert!(whole_map(&needs(matched)));
        assert!(whole_map(&needs(r#"{"cache": {"name": "c"}}"#)));
        let three = r#"{"rate_limits": [{"name": "r", "key": ["path", "method", "header:x-a"], "limit": 1, "period": "1s"}]}"#;
        assert!(whole_map(&needs(three)));
    }
}
