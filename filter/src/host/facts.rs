//! Reads [`RequestFacts`] from Envoy.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use crate::config::Needs;
use crate::core::request::{ClientIpSource, RequestFacts};

/// Reads the request headers (one host call) and the properties the
/// configuration needs. Header values stay bytes; nothing here panics on
/// what a client sends.
pub fn read(client_ip: ClientIpSource, needs: Needs) -> RequestFacts {
    let mut facts = RequestFacts::default();
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

/// An Envoy property as bytes; empty when missing or unreadable.
pub fn property(path: &[&str]) -> Vec<u8> {
    hostcalls::get_property(path.to_vec())
        .ok()
        .flatten()
        .unwrap_or_default()
}
