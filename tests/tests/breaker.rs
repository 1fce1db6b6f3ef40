//! Circuit breakers in a real Envoy with several workers: what trips them,
//! what they answer while open, how probes close or re-open them.
//!
//! Every request goes on a new connection, so Envoy spreads them over its
//! workers; the breaker's state lives in shared data and must not care.

use std::thread::sleep;
use std::time::{Duration, Instant};

use floodgate_tests::client::{self, Request, Response};
use floodgate_tests::{Behavior, Envoy, EnvoyBuilder, Upstream};

/// `on_log` runs as the stream ends, which can be a moment after the client
/// has the last byte: a short pause keeps one request's outcome ahead of
/// the next request's admission.
const SETTLE: Duration = Duration::from_millis(30);

fn start(upstream: &Upstream, breaker: &str) -> Envoy {
    EnvoyBuilder::new()
        .plugin_config(format!(r#"{{"circuit_breakers": [{breaker}]}}"#))
        .concurrency(3)
        .upstream(upstream)
        .start()
        .unwrap()
}

fn get(envoy: &Envoy, path: &str) -> Response {
    let response = client::get(&envoy.url(path));
    sleep(SETTLE);
    response
}

fn stat(envoy: &Envoy, breaker: &str, metric: &str) -> u64 {
    envoy
        .stat(&format!("wasmcustom.floodgate.breaker.{breaker}.{metric}"))
        .unwrap_or(0)
}

/// True when `response` is the breaker's own default open answer.
fn is_open_answer(response: &Response, breaker: &str) -> bool {
    response.status == 503
        && response.header("retry-after").is_some()
        && response
            .text()
            .contains(&format!("\"breaker\":\"{breaker}\""))
}

/// Sends requests every 50 ms until one reaches the upstream (is not the
/// open answer) or `limit` passes; the response and when it came.
fn until_admitted(
    envoy: &Envoy,
    path: &str,
    breaker: &str,
    limit: Duration,
) -> (Response, Duration) {
    let start = Instant::now();
    loop {
        let response = get(envoy, path);
        if !is_open_answer(&response, breaker) || start.elapsed() > limit {
            return (response, start.elapsed());
        }
        sleep(Duration::from_millis(50));
    }
}

#[test]
fn opens_after_consecutive_failures_and_answers_503_with_retry_after() {
    let upstream = Upstream::start();
    upstream.on("/c/x", Behavior::status(503));
    let envoy = start(
        &upstream,
        r#"{"name": "catalog", "match": {"path_prefix": "/c/"},
            "trip": {"consecutive_failures": 5}, "open_for": "10s"}"#,
    );
    for _ in 0..5 {
        assert_eq!(get(&envoy, "/c/x").status, 503);
    }
    assert_eq!(upstream.hits("/c/x"), 5);

    let open = get(&envoy, "/c/x");
    assert!(is_open_answer(&open, "catalog"), "{open:?}");
    assert_eq!(open.header_str("retry-after"), Some("10"));
    assert_eq!(open.header_str("content-type"), Some("application/json"));
    assert_eq!(
        upstream.hits("/c/x"),
        5,
        "an open breaker never reaches the upstream"
    );
    assert_eq!(get(&envoy, "/other").status, 200, "unmatched paths flow");

    assert_eq!(stat(&envoy, "catalog", "state"), 1);
    assert_eq!(stat(&envoy, "catalog", "opened"), 1);
    assert_eq!(stat(&envoy, "catalog", "rejected"), 1);
    assert!(envoy.wait_for_log(
        "breaker catalog: closed -> open after 5 consecutive failures",
        Duration::from_secs(2)
    ));
    let prometheus = envoy.prometheus();
    assert!(
        prometheus.contains(r#"floodgate_breaker_state{breaker="catalog"} 1"#),
        "{prometheus}"
    );
    assert!(prometheus.contains(r#"floodgate_breaker_opened{breaker="catalog"} 1"#));
}

#[test]
fn serves_the_fallback_while_open() {
    let upstream = Upstream::start();
    upstream.on("/f", Behavior::status(500));
    let envoy = start(
        &upstream,
        r#"{"name": "fb", "trip": {"consecutive_failures": 2},
            "fallback": {"status": 200, "body": "{\"items\":[]}",
                         "headers": {"content-type": "application/json", "x-degraded": "1"}}}"#,
    );
    get(&envoy, "/f");
    get(&envoy, "/f");
    let fallback = get(&envoy, "/f");
    assert_eq!(fallback.status, 200);
    assert_eq!(fallback.text(), r#"{"items":[]}"#);
    assert_eq!(fallback.header_str("x-degraded"), Some("1"));
    assert_eq!(upstream.hits("/f"), 2);
}

/// Case 2: 4xx is neutral.
#[test]
fn four_xx_is_neutral() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        r#"{"name": "n", "trip": {"consecutive_failures": 5}, "open_for": "1s"}"#,
    );
    for status in [400, 404, 429] {
        upstream.on("/n", Behavior::status(status).body("upstream"));
        for _ in 0..30 {
            let response = client::get(&envoy.url("/n"));
            assert_eq!((response.status, response.text()), (status, "upstream"));
        }
    }
    assert_eq!(upstream.hits("/n"), 90);
    sleep(SETTLE);
    assert_eq!(stat(&envoy, "n", "opened"), 0);

    for (i, status) in [503, 404, 503, 404, 503, 404, 503, 404, 503]
        .into_iter()
        .enumerate()
    {
        upstream.on("/n", Behavior::status(status));
        assert_eq!(get(&envoy, "/n").status, status, "request {i}");
        let expected = if i == 8 { 1 } else { 0 };
        assert_eq!(stat(&envoy, "n", "state"), expected, "after request {i}");
    }
    assert!(is_open_answer(&get(&envoy, "/n"), "n"));
    assert_eq!(upstream.hits("/n"), 99);

    // Half-open: a probe answered 404 does not re-open it; the next request
    // is the next probe and reaches the upstream.
    upstream.on("/n", Behavior::status(404));
    let (probe, _) = until_admitted(&envoy, "/n", "n", Duration::from_secs(3));
    assert_eq!(probe.status, 404);
    assert_eq!(stat(&envoy, "n", "state"), 2);
    upstream.on("/n", Behavior::status(200));
    assert_eq!(get(&envoy, "/n").status, 200);
    assert_eq!(upstream.hits("/n"), 101);
    assert_eq!(stat(&envoy, "n", "state"), 0);
    assert_eq!(stat(&envoy, "n", "opened"), 1);
}
