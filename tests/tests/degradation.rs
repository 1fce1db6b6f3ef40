//! The cache and the circuit breaker together: the fallback order (a cached
//! copy, the breaker's fallback, the error) in a real Envoy with two workers.

use std::thread::sleep;
use std::time::Duration;

use floodgate_tests::client::{self, Response};
use floodgate_tests::{Behavior, Envoy, EnvoyBuilder, Upstream};

/// A breaker and a cache on `/catalog/`; stale copies allowed for 5 minutes.
const CONFIG: &str = r#"{
  "circuit_breakers": [{
    "name": "catalog",
    "match": { "path_prefix": "/catalog/" },
    "trip": { "consecutive_failures": 2 },
    "open_for": "30s",
    "fallback": { "status": 503, "body": "catalog fallback",
                  "headers": { "content-type": "text/plain" } }
  }],
  "cache": {
    "match": { "path_prefix": "/catalog/" },
    "stale_if_error": "5m",
    "serve_stale_when_open": true
  }
}"#;

fn start(upstream: &Upstream) -> Envoy {
    EnvoyBuilder::new()
        .plugin_config(CONFIG)
        .upstream(upstream)
        .start()
        .unwrap()
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy
        .stat(&format!("wasmcustom.floodgate.{name}"))
        .unwrap_or(0)
}

fn cache_status(response: &Response) -> &str {
    response.header_str("cache-status").unwrap_or("")
}

/// Stores `path` with `max-age=1` and waits until the copy is stale.
fn store_then_let_go_stale(envoy: &Envoy, upstream: &Upstream, path: &str, body: &str) {
    upstream.on(
        path,
        Behavior::status(200)
            .header("cache-control", "max-age=1")
            .body(body.to_owned()),
    );
    let first = client::get(&envoy.url(path));
    assert_eq!(first.status, 200);
    assert!(
        cache_status(&first).ends_with("stored"),
        "{}",
        cache_status(&first)
    );
    sleep(Duration::from_millis(2_100));
}

#[test]
fn an_open_breaker_serves_stored_copies_stale_and_its_fallback_elsewhere() {
    let upstream = Upstream::start();
    let envoy = start(&upstream);
    store_then_let_go_stale(&envoy, &upstream, "/catalog/a", "copy of a");

    // Trip the breaker on a path with nothing stored: two upstream 500s.
    upstream.on("/catalog/broken", Behavior::status(500));
    for _ in 0..2 {
        assert_eq!(client::get(&envoy.url("/catalog/broken")).status, 500);
        sleep(Duration::from_millis(50));
    }
    assert_eq!(stat(&envoy, "breaker.catalog.opened"), 1);

    // The stored copy answers at once, stale, without an upstream call.
    let stale = client::get(&envoy.url("/catalog/a"));
    assert_eq!(stale.status, 200);
    assert_eq!(stale.text(), "copy of a");
    assert!(
        cache_status(&stale).contains("detail=breaker-open"),
        "{}",
        cache_status(&stale)
    );
    let age: u64 = stale.header_str("age").unwrap().parse().unwrap();
    assert!(age >= 2, "age {age}");
    assert_eq!(upstream.hits("/catalog/a"), 1);

    // Nothing stored: the breaker's own fallback, still no upstream call.
    let fallback = client::get(&envoy.url("/catalog/b"));
    assert_eq!(fallback.status, 503);
    assert_eq!(fallback.text(), "catalog fallback");
    assert_eq!(upstream.hits("/catalog/b"), 0);
    // The breaker answered, not the cache: no cache-status, no miss.
    assert_eq!(fallback.header("cache-status"), None);
    assert_eq!(stat(&envoy, "cache.default.misses"), 3);

    assert_eq!(stat(&envoy, "cache.default.stale_served"), 1);
    assert_eq!(stat(&envoy, "breaker.catalog.rejected"), 2);
}

#[test]
fn failures_hidden_behind_stale_copies_still_open_the_breaker() {
    let upstream = Upstream::start();
    let envoy = start(&upstream);
    store_then_let_go_stale(&envoy, &upstream, "/catalog/a", "copy of a");

    // The upstream now fails; the client sees the stale copy both times,
    // and the breaker counts both failures.
    upstream.on("/catalog/a", Behavior::status(503));
    for _ in 0..2 {
        let response = client::get(&envoy.url("/catalog/a"));
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), "copy of a");
        assert!(
            cache_status(&response).contains("detail=stale-if-error"),
            "{}",
            cache_status(&response)
        );
        sleep(Duration::from_millis(50));
    }
    assert_eq!(upstream.hits("/catalog/a"), 3);
    assert_eq!(stat(&envoy, "breaker.catalog.opened"), 1);

    // Open now: the copy is served without calling the upstream.
    let response = client::get(&envoy.url("/catalog/a"));
    assert_eq!(response.text(), "copy of a");
    assert!(
        cache_status(&response).contains("detail=breaker-open"),
        "{}",
        cache_status(&response)
    );
    assert_eq!(upstream.hits("/catalog/a"), 3);
}

#[test]
fn a_fresh_hit_never_touches_an_open_breaker() {
    let upstream = Upstream::start();
    let envoy = start(&upstream);
    upstream.on(
        "/catalog/fresh",
        Behavior::status(200)
            .header("cache-control", "max-age=300")
            .body("fresh"),
    );
    assert_eq!(client::get(&envoy.url("/catalog/fresh")).status, 200);

    upstream.on("/catalog/broken", Behavior::status(500));
    for _ in 0..2 {
        client::get(&envoy.url("/catalog/broken"));
        sleep(Duration::from_millis(50));
    }
    assert_eq!(stat(&envoy, "breaker.catalog.opened"), 1);

    let hit = client::get(&envoy.url("/catalog/fresh"));
    assert_eq!(hit.text(), "fresh");
    assert!(
        cache_status(&hit).starts_with("floodgate; hit"),
        "{}",
        cache_status(&hit)
    );
    assert_eq!(stat(&envoy, "breaker.catalog.rejected"), 0);
    assert_eq!(upstream.hits("/catalog/fresh"), 1);
}
