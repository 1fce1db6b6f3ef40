//! Rate limits in a real Envoy with several workers: exact counts across
//! workers, `retry-after`, client addresses, several rules, shadow mode.
//! The slow cases (refill over real time, a flood of keys) are in
//! `ratelimit_long.rs`.

#[path = "ratelimit_support/mod.rs"]
mod support;

use std::thread::sleep;
use std::time::{Duration, Instant};

use floodgate_tests::client::{self, Request};
use floodgate_tests::{EnvoyBuilder, Upstream};
use support::*;

#[test]
fn first_touch_of_fresh_keys_admits_exactly_the_burst_across_eight_workers() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        8,
        &config(&[r#"{"name": "per-api-key", "key": ["header:x-api-key"],
                     "limit": 5, "period": "1h"}"#]),
    );
    let mut total = 0;
    for trial in 0..100 {
        let request =
            Request::get(&envoy.url("/api/x")).header("x-api-key", format!("trial-{trial}"));
        let responses = client::burst(32, &request);
        assert!(
            responses.iter().all(|r| r.status == 200 || r.status == 429),
            "{:?}",
            statuses(&responses)
        );
        assert_eq!(
            count(&responses, 200),
            5,
            "trial {trial}: {:?}",
            statuses(&responses)
        );
        total += count(&responses, 200);
    }
    assert_eq!(total, 500);
    assert_eq!(upstream.hits("/api/x"), 500);
    assert_eq!(
        envoy.stat("wasmcustom.floodgate.ratelimit.rule.per-api-key.allowed"),
        Some(500)
    );
    assert_eq!(
        envoy.stat("wasmcustom.floodgate.ratelimit.rule.per-api-key.limited"),
        Some(2700)
    );
    assert_eq!(
        envoy.stat("wasmcustom.floodgate.ratelimit.rule.per-api-key.cas_exhausted"),
        Some(0)
    );
    let log = envoy.log();
    assert!(
        !log.lines()
            .any(|l| l.contains("[error]") && l.to_lowercase().contains("cas")),
        "{log}"
    );
}

#[test]
fn refusals_carry_retry_after_ratelimit_fields_and_a_json_body() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        2,
        &config(&[r#"{"name": "per-api-key", "key": ["header:x-api-key"],
                     "limit": 100, "period": "1s", "burst": 2}"#]),
    );
    let first = get_with(&envoy, "/a", &[("x-api-key", "k")]);
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header_str("ratelimit-policy"),
        Some("\"per-api-key\";q=100;w=1")
    );
    assert_eq!(
        first.header_str("ratelimit"),
        Some("\"per-api-key\";r=1;t=1")
    );
    assert_eq!(first.header("retry-after"), None);

    let responses = client::burst(3, &Request::get(&envoy.url("/a")).header("x-api-key", "k2"));
    let refused = responses.iter().find(|r| r.status == 429).expect("one 429");
    assert_eq!(count(&responses, 429), 1);
    assert_eq!(refused.header_str("retry-after"), Some("1"));
    assert_eq!(
        refused.header_str("ratelimit-policy"),
        Some("\"per-api-key\";q=100;w=1")
    );
    assert_eq!(
        refused.header_str("ratelimit"),
        Some("\"per-api-key\";r=0;t=1")
    );
    assert_eq!(refused.header_str("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(refused.text()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": "rate limited", "rule": "per-api-key", "retry_after": 1})
    );
    assert!(envoy.wait_for_log(
        "rate limit \"per-api-key\" refused a request",
        Duration::from_secs(5)
    ));
    assert!(!envoy.log().contains("k2"), "a key value reached the log");
}

#[test]
fn retry_after_counts_down_to_the_next_token() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        2,
        &config(&[
            r#"{"name": "bucket", "match": {"path_prefix": "/bucket"}, "key": ["header:x-api-key"],
                "limit": 1, "period": "10s", "burst": 2}"#,
            r#"{"name": "window", "match": {"path_prefix": "/window"}, "key": ["header:x-api-key"],
                "algorithm": "fixed_window", "limit": 2, "period": "60s"}"#,
        ]),
    );
    // Fixed window: the third request waits for the rest of the window.
    let window_start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let responses = client::burst(
        3,
        &Request::get(&envoy.url("/window")).header("x-api-key", "w"),
    );
    let refused = responses.iter().find(|r| r.status == 429).expect("one 429");
    let rest = 60.0 - window_start % 60.0;
    let told = retry_after(refused) as f64;
    assert!(
        (told - rest).abs() <= 1.5,
        "retry-after {told}, rest of window {rest}"
    );

    // Token bucket: 2 at once pass, the third waits for the next token.
    let begin = Instant::now();
    let responses = client::burst(
        3,
        &Request::get(&envoy.url("/bucket")).header("x-api-key", "b"),
    );
    assert_eq!(count(&responses, 200), 2, "{:?}", statuses(&responses));
    let refused = responses.iter().find(|r| r.status == 429).unwrap();
    let told = retry_after(refused);
    assert!(told == 9 || told == 10, "{told}");
    let due = begin + Duration::from_secs(10);
    sleep(due - Duration::from_millis(1_500) - Instant::now());
    let early = get_with(&envoy, "/bucket", &[("x-api-key", "b")]);
    assert_eq!(early.status, 429);
    let left = retry_after(&early);
    assert!((1..told).contains(&left), "{left}");
    sleep(due + Duration::from_millis(200) - Instant::now());
    assert_eq!(
        get_with(&envoy, "/bucket", &[("x-api-key", "b")]).status,
        200
    );
}

#[test]
fn peer_addresses_ignore_forged_forwarded_for() {
    let upstream = Upstream::start();
    let envoy = EnvoyBuilder::new()
        .concurrency(2)
        .use_remote_address(true)
        .plugin_config(
            r#"{"client_ip": {"from": "peer"},
                "rate_limits": [{"name": "per-client", "key": ["client_ip"], "limit": 5, "period": "1h"}]}"#,
        )
        .upstream(&upstream)
        .start()
        .unwrap();
    // One client (127.0.0.1) with a different made-up address each time,
    // among them the address of another client (127.0.0.2).
    let admitted = (0..20)
        .filter(|i| {
            let forged = if i % 2 == 0 {
                "127.0.0.2".to_owned()
            } else {
                format!("10.0.{i}.{}", 7 * i)
            };
            raw_get(
                envoy.listener_port(),
                [127, 0, 0, 1],
                &[("x-forwarded-for", &forged)],
            ) == 200
        })
        .count();
    assert_eq!(admitted, 5);
    // The other client still has its own five.
    let other = (0..8)
        .filter(|_| raw_get(envoy.listener_port(), [127, 0, 0, 2], &[]) == 200)
        .count();
    assert_eq!(other, 5);
}

/// `GET /` from local address `from` on a fresh connection; the status.
#[test]
fn forwarded_for_keys_on_the_trusted_hop() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        2,
        r#"{"client_ip": {"from": "x-forwarded-for", "trusted_hops": 1},
            "rate_limits": [{"name": "per-client", "key": ["client_ip"], "limit": 5, "period": "1h"}]}"#,
    );
    // A client forging a victim's address to the left of its own only
    // spends its own bucket.
    let attacker = (0..10)
        .filter(|_| {
            get_with(
                &envoy,
                "/",
                &[("x-forwarded-for", "192.0.2.9, 198.51.100.1")],
            )
            .status
                == 200
        })
        .count();
    assert_eq!(attacker, 5);
    let victim = (0..5)
        .filter(|_| get_with(&envoy, "/", &[("x-forwarded-for", "192.0.2.9")]).status == 200)
        .count();
    assert_eq!(victim, 5);
    // No header at all: the peer address, one shared bucket, never unlimited.
    let bare = (0..10)
        .filter(|_| get_with(&envoy, "/", &[]).status == 200)
        .count();
    assert_eq!(bare, 5);
}

/// Envoy hands a filter the first value of a repeated header, as its own
/// rate limit descriptors take it, and joins the repeated lines of the
/// headers it knows, `X-Forwarded-For` among them.
#[test]
fn repeated_headers_key_on_the_first_value_and_forwarded_for_lines_join() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        2,
        r#"{"client_ip": {"from": "x-forwarded-for", "trusted_hops": 1},
            "rate_limits": [
              {"name": "per-api-key", "match": {"path_prefix": "/by-key"},
               "key": ["header:x-api-key"], "limit": 3, "period": "1h"},
              {"name": "per-client", "match": {"path_prefix": "/by-client"},
               "key": ["client_ip"], "limit": 3, "period": "1h"}]}"#,
    );
    let twice = [("x-api-key", "first"), ("x-api-key", "second")];
    let statuses: Vec<u16> = (0..4)
        .map(|_| get_with(&envoy, "/by-key", &twice).status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
    let first = [("x-api-key", "first")];
    assert_eq!(get_with(&envoy, "/by-key", &first).status, 429);
    let second = [("x-api-key", "second")];
    assert_eq!(get_with(&envoy, "/by-key", &second).status, 200);

    // Two lines are one list: the rightmost address of the second line is
    // the trusted hop.
    let lines = [
        ("x-forwarded-for", "192.0.2.9"),
        ("x-forwarded-for", "198.51.100.1"),
    ];
    let statuses: Vec<u16> = (0..4)
        .map(|_| get_with(&envoy, "/by-client", &lines).status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
    let rightmost = [("x-forwarded-for", "198.51.100.1")];
    assert_eq!(get_with(&envoy, "/by-client", &rightmost).status, 429);
    let leftmost = [("x-forwarded-for", "192.0.2.9")];
    assert_eq!(get_with(&envoy, "/by-client", &leftmost).status, 200);
}

/// `header:host` keys on the host whether the filter reads one header or
/// the whole map (which a `match` on headers asks for): Envoy keeps `Host`
/// as `:authority`.
#[test]
fn a_host_key_is_the_same_whichever_way_headers_are_read() {
    let upstream = Upstream::start();
    for config in [
        r#"{"rate_limits": [{"name": "per-host", "key": ["header:host"], "limit": 1, "period": "1h"}]}"#,
        r#"{"rate_limits": [{"name": "per-host", "key": ["header:host"], "limit": 1, "period": "1h",
                             "match": {"headers": {"host": true}}}]}"#,
    ] {
        let envoy = start(&upstream, 2, config);
        let one = [("host", "one.example")];
        let two = [("host", "two.example")];
        assert_eq!(get_with(&envoy, "/", &one).status, 200, "{config}");
        assert_eq!(get_with(&envoy, "/", &two).status, 200, "{config}");
        assert_eq!(get_with(&envoy, "/", &one).status, 429, "{config}");
    }
}

#[test]
fn requests_without_the_keyed_header_share_one_bucket() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        2,
        &config(&[
            r#"{"name": "per-api-key", "key": ["header:x-api-key"], "limit": 3, "period": "1h"}"#,
        ]),
    );
    let bare = client::burst(8, &Request::get(&envoy.url("/")));
    assert_eq!(count(&bare, 200), 3);
    // An empty value is the same as none; another key has its own bucket.
    assert_eq!(get_with(&envoy, "/", &[("x-api-key", "")]).status, 429);
    assert_eq!(
        get_with(&envoy, "/", &[("x-api-key", "someone")]).status,
        200
    );
}

#[test]
fn a_request_refused_by_one_rule_spends_nothing_in_another() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        2,
        &config(&[
            r#"{"name": "per-key", "key": ["header:x-api-key"], "limit": 3, "period": "1h"}"#,
            r#"{"name": "expensive", "match": {"path_prefix": "/expensive"}, "limit": 1, "period": "1h"}"#,
        ]),
    );
    assert_eq!(
        get_with(&envoy, "/expensive", &[("x-api-key", "a")]).status,
        200
    );
    for _ in 0..5 {
        let refused = get_with(&envoy, "/expensive", &[("x-api-key", "a")]);
        assert_eq!(refused.status, 429);
        assert!(
            refused.text().contains("\"rule\":\"expensive\""),
            "{}",
            refused.text()
        );
    }
    // Only the first request spent from per-key: two are left, and the
    // allowed answer names the tightest rule.
    let next = get_with(&envoy, "/cheap", &[("x-api-key", "a")]);
    assert_eq!(next.status, 200);
    assert_eq!(next.header_str("ratelimit"), Some("\"per-key\";r=1;t=2400"));
    assert_eq!(
        get_with(&envoy, "/cheap", &[("x-api-key", "a")]).status,
        200
    );
    assert_eq!(
        get_with(&envoy, "/cheap", &[("x-api-key", "a")]).status,
        429
    );
}

#[test]
fn shadow_mode_refuses_nothing_and_counts_what_it_would_have() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        2,
        &config(&[
            r#"{"name": "trial", "key": ["header:x-api-key"], "limit": 4, "period": "1h",
                     "mode": "shadow"}"#,
        ]),
    );
    let responses = client::burst(10, &Request::get(&envoy.url("/")).header("x-api-key", "k"));
    assert_eq!(count(&responses, 200), 10);
    assert!(responses.iter().all(|r| r.header("ratelimit").is_none()));
    assert_eq!(
        envoy.stat("wasmcustom.floodgate.ratelimit.rule.trial.shadow_limited"),
        Some(6)
    );
    assert_eq!(
        envoy.stat("wasmcustom.floodgate.ratelimit.rule.trial.allowed"),
        Some(4)
    );
    assert_eq!(
        envoy.stat("wasmcustom.floodgate.ratelimit.rule.trial.limited"),
        Some(0)
    );
    let prometheus = envoy.prometheus();
    assert!(
        prometheus.contains("floodgate_ratelimit_rule_shadow_limited{rule=\"trial\"} 6"),
        "{prometheus}"
    );
}

#[test]
fn sliding_window_refuses_a_second_burst_just_after_the_first() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        2,
        &config(&[
            r#"{"name": "sliding", "key": ["header:x-api-key"], "algorithm": "sliding_window",
                     "limit": 5, "period": "10s"}"#,
        ]),
    );
    let request = Request::get(&envoy.url("/")).header("x-api-key", "fresh");
    assert_eq!(count(&client::burst(5, &request), 200), 5);
    sleep(Duration::from_millis(400));
    assert_eq!(count(&client::burst(5, &request), 200), 0);
}

#[test]
fn cached_answers_spend_tokens_and_carry_the_fields() {
    let upstream = Upstream::start();
    upstream.on(
        "/catalog/item",
        floodgate_tests::Behavior::status(200)
            .header("cache-control", "max-age=60")
            .header("ratelimit", "\"upstream\";r=99;t=1")
            .body("item"),
    );
    let envoy = start(
        &upstream,
        2,
        r#"{"rate_limits": [{"name": "catalog", "limit": 2, "period": "1h"}], "cache": {}}"#,
    );
    let miss = client::get(&envoy.url("/catalog/item"));
    assert_eq!(miss.status, 200);
    assert_eq!(miss.header_str("ratelimit"), Some("\"catalog\";r=1;t=1800"));
    let hit = client::get(&envoy.url("/catalog/item"));
    assert_eq!(hit.status, 200);
    assert!(
        hit.header_str("cache-status").unwrap_or("").contains("hit"),
        "{:?}",
        hit.headers
    );
    // A cache hit spends a token too, and carries its own quota over
    // whatever the stored copy held.
    assert_eq!(hit.header_str("ratelimit"), Some("\"catalog\";r=0;t=3600"));
    assert_eq!(client::get(&envoy.url("/catalog/item")).status, 429);
    assert_eq!(upstream.hits("/catalog/item"), 1);
}
