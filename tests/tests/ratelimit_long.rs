//! Rate limits over real time and under load: refill after idling, no lost
//! fractions, the sliding window held steady, and a flood of distinct keys.
//! Every test here is `#[ignore]`d (minutes each); `make test-long` runs them.

#[path = "ratelimit_support/mod.rs"]
mod support;

use std::thread::sleep;
use std::time::{Duration, Instant};

use floodgate_tests::client::{self, Request};
use floodgate_tests::Upstream;
use support::*;

fn idle_refill(workers: usize) {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        workers,
        &config(&[
            r#"{"name": "refill", "key": ["header:x-api-key"], "limit": 1, "period": "2s", "burst": 10}"#,
        ]),
    );
    let (admitted, _) = paced(
        &envoy,
        "/",
        "k",
        Duration::from_millis(125),
        Duration::from_secs(20),
    );
    assert!(
        (18..=21).contains(&admitted),
        "{workers} workers: {admitted}"
    );
    sleep(Duration::from_secs(60));
    let request = Request::get(&envoy.url("/")).header("x-api-key", "k");
    let back_to_back = (0..30)
        .filter(|_| client::send(&request).status == 200)
        .count();
    assert_eq!(back_to_back, 10);
}

#[test]
#[ignore = "long: about 80 s; make test-long"]
fn an_idle_bucket_refills_to_the_burst_and_no_further_one_worker() {
    idle_refill(1);
}

#[test]
#[ignore = "long: about 80 s; make test-long"]
fn an_idle_bucket_refills_to_the_burst_and_no_further_eight_workers() {
    idle_refill(8);
}

#[test]
#[ignore = "long: about 90 s; make test-long"]
fn fractions_of_tokens_are_never_lost() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        4,
        &config(&[
            r#"{"name": "thirds", "key": ["header:x-api-key"], "limit": 3, "period": "1s", "burst": 1}"#,
        ]),
    );
    let (slow, _) = paced(
        &envoy,
        "/",
        "slow",
        Duration::from_millis(400),
        Duration::from_secs(60),
    );
    assert_eq!(slow, 150);
    let (fast, _) = paced(
        &envoy,
        "/",
        "fast",
        Duration::from_millis(50),
        Duration::from_secs(30),
    );
    assert!((84..=91).contains(&fast), "{fast}");
}

#[test]
#[ignore = "long: about 40 s; make test-long"]
fn sliding_window_holds_a_steady_client_to_the_limit() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        4,
        &config(&[
            r#"{"name": "sliding", "key": ["header:x-api-key"], "algorithm": "sliding_window",
                     "limit": 5, "period": "10s"}"#,
        ]),
    );
    let (admitted, times) = paced(
        &envoy,
        "/",
        "steady",
        Duration::from_millis(500),
        Duration::from_secs(40),
    );
    assert!((18..=21).contains(&admitted), "{admitted}: {times:?}");
    for (i, from) in times.iter().enumerate() {
        let within = times[i..]
            .iter()
            .filter(|t| **t < *from + Duration::from_secs(10))
            .count();
        assert!(within <= 6, "{within} within 10 s of {from:?}: {times:?}");
    }
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] <= Duration::from_secs(10),
            "locked out: {times:?}"
        );
    }
}

/// Sends `total` GETs over `connections` keep-alive HTTP/1.1 connections,
#[test]
#[ignore = "long: two to three minutes; make test-long"]
fn a_flood_of_distinct_keys_keeps_memory_flat() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        2,
        &config(&[
            r#"{"name": "per-api-key", "key": ["header:x-api-key"], "limit": 5, "period": "1h",
                     "max_keys": 10000}"#,
        ]),
    );
    let begin = Instant::now();
    let first = flood(envoy.listener_port(), 0, 100_000, 64);
    assert_eq!(first[5], 0, "5xx: {first:?}");
    assert_eq!(first[2], 100_000, "{first:?}");
    let memory_at_100k = envoy.memory();
    let series_at_100k = plugin_series(&envoy);

    let rest = flood(envoy.listener_port(), 100_000, 200_000, 64);
    assert_eq!(rest[5], 0, "5xx: {rest:?}");
    let memory_at_300k = envoy.memory();
    eprintln!(
        "flood: 300,000 keys in {:?}; memory {memory_at_100k} at 100,000, {memory_at_300k} at 300,000",
        begin.elapsed()
    );
    assert_eq!(plugin_series(&envoy), series_at_100k);
    // Flat: allow 2 MiB of allocator noise (connection buffers, stats).
    assert!(
        memory_at_300k <= memory_at_100k + 2 * 1024 * 1024,
        "grew from {memory_at_100k} to {memory_at_300k}"
    );
    assert!(begin.elapsed() < Duration::from_secs(600));
    assert!(
        envoy
            .stat("wasmcustom.floodgate.ratelimit.rule.per-api-key.evictions")
            .unwrap()
            > 0
    );

    for steady in 0..10 {
        let request = Request::get(&envoy.url("/")).header("x-api-key", format!("steady-{steady}"));
        let admitted = (0..8)
            .filter(|_| client::send(&request).status == 200)
            .count();
        assert_eq!(admitted, 5, "steady-{steady}");
    }
}
