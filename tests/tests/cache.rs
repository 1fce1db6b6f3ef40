//! The response cache in a real Envoy with two workers: the cases of the
//! cache's acceptance list, with the figures that are right.

use std::thread::sleep;
use std::time::Duration;

use floodgate_tests::client::{self, Request, Response};
use floodgate_tests::{noise, Behavior, Envoy, EnvoyBuilder, Route, Upstream};

fn envoy_with(config: &str, upstream: &Upstream) -> Envoy {
    EnvoyBuilder::new()
        .plugin_config(config)
        .upstream(upstream)
        .start()
        .unwrap()
}

fn get_with(envoy: &Envoy, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = Request::get(&envoy.url(path));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    client::send(&request)
}

fn cache_status(response: &Response) -> &str {
    response.header_str("cache-status").unwrap_or("")
}

fn age(response: &Response) -> u64 {
    let ages: Vec<_> = response.headers.get_all("age").iter().collect();
    assert_eq!(
        ages.len(),
        1,
        "exactly one age header: {:?}",
        response.headers
    );
    ages[0].to_str().unwrap().parse().unwrap()
}

fn stat(envoy: &Envoy, metric: &str) -> u64 {
    envoy
        .stat(&format!("wasmcustom.floodgate.cache.default.{metric}"))
        .unwrap_or(0)
}

#[test]
fn authorization_keeps_callers_apart() {
    let upstream = Upstream::start();
    let envoy = envoy_with(r#"{"cache": {}}"#, &upstream);
    for (token, name) in [
        ("A", "alice"),
        ("B", "bob"),
        ("", "anonymous"),
        ("A", "alice"),
    ] {
        upstream.on(
            "/me",
            Behavior::status(200)
                .header("cache-control", "max-age=300")
                .body(name),
        );
        let auth = format!("Bearer {token}");
        let headers: &[(&str, &str)] = if token.is_empty() {
            &[]
        } else {
            &[("authorization", &auth)]
        };
        let response = get_with(&envoy, "/me", headers);
        assert_eq!(response.text(), name);
    }
    assert_eq!(upstream.hits("/me"), 4);

    upstream.on(
        "/public",
        Behavior::status(200)
            .header("cache-control", "public, max-age=300")
            .body("shared"),
    );
    get_with(&envoy, "/public", &[("authorization", "Bearer A")]);
    let second = get_with(&envoy, "/public", &[("authorization", "Bearer B")]);
    assert_eq!(second.text(), "shared");
    assert_eq!(cache_status(&second), "floodgate; hit; ttl=300");
    assert_eq!(upstream.hits("/public"), 1);
}

#[test]
fn vary_keeps_variants_apart() {
    let upstream = Upstream::start();
    let envoy = envoy_with(r#"{"cache": {}}"#, &upstream);
    let variant = |body: &str, vary: &str| {
        Behavior::status(200)
            .header("cache-control", "max-age=300")
            .header("vary", vary)
            .body(body.to_owned())
    };

    upstream.on("/enc", variant("GZIP-BYTES", "Accept-Encoding"));
    assert_eq!(
        get_with(&envoy, "/enc", &[("accept-encoding", "gzip")]).text(),
        "GZIP-BYTES"
    );
    upstream.on("/enc", variant("plain", "Accept-Encoding"));
    for _ in 0..3 {
        assert_eq!(get_with(&envoy, "/enc", &[]).text(), "plain");
    }
    assert_eq!(
        get_with(&envoy, "/enc", &[("accept-encoding", "gzip")]).text(),
        "GZIP-BYTES"
    );
    assert_eq!(upstream.hits("/enc"), 2);

    upstream.on("/user", variant("alice", "X-User-Id"));
    get_with(&envoy, "/user", &[("x-user-id", "alice")]);
    upstream.on("/user", variant("bob", "X-User-Id"));
    assert_eq!(
        get_with(&envoy, "/user", &[("x-user-id", "bob")]).text(),
        "bob"
    );
    assert_eq!(
        get_with(&envoy, "/user", &[("x-user-id", "alice")]).text(),
        "alice"
    );
    assert_eq!(
        get_with(&envoy, "/user", &[("x-user-id", "bob")]).text(),
        "bob"
    );
    assert_eq!(upstream.hits("/user"), 2);

    upstream.on("/star", variant("star", "*"));
    for _ in 0..3 {
        let response = get_with(&envoy, "/star", &[]);
        assert!(
            cache_status(&response).contains("detail=vary-star"),
            "{}",
            cache_status(&response)
        );
    }
    assert_eq!(upstream.hits("/star"), 3);

    upstream.on("/lang", variant("en", "Accept-Language,  accept-encoding"));
    get_with(
        &envoy,
        "/lang",
        &[("accept-language", "en,fr"), ("accept-encoding", "br")],
    );
    let hit = get_with(
        &envoy,
        "/lang",
        &[("Accept-Language", "en, fr"), ("ACCEPT-ENCODING", "br")],
    );
    assert!(
        cache_status(&hit).starts_with("floodgate; hit"),
        "{}",
        cache_status(&hit)
    );
    assert_eq!(upstream.hits("/lang"), 1);
}

#[test]
fn head_and_get_share_only_what_get_stored() {
    let upstream = Upstream::start();
    let envoy = envoy_with(r#"{"cache": {}}"#, &upstream);
    let body = noise(5_000, 1);
    upstream.on(
        "/file",
        Behavior::status(200)
            .header("cache-control", "max-age=300")
            .body(body.clone()),
    );

    let head = client::send(&Request::new("HEAD", &envoy.url("/file")));
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let got = client::get(&envoy.url("/file"));
    assert_eq!(got.body.as_ref(), body.as_slice());
    assert_eq!(upstream.hits("/file"), 2, "a HEAD answer is never stored");

    let head_hit = client::send(&Request::new("HEAD", &envoy.url("/file")));
    assert_eq!(head_hit.header_str("content-length"), Some("5000"));
    assert!(head_hit.body.is_empty());
    assert!(cache_status(&head_hit).starts_with("floodgate; hit"));
    let get_hit = client::get(&envoy.url("/file"));
    assert_eq!(get_hit.body.as_ref(), body.as_slice());
    assert_eq!(get_hit.header_str("content-length"), Some("5000"));
    assert_eq!(upstream.hits("/file"), 2);

    upstream.on(
        "/form",
        Behavior::status(200)
            .header("cache-control", "max-age=300")
            .body("posted"),
    );
    let posted = client::request("POST", &envoy.url("/form"), &[], b"x");
    assert_eq!(cache_status(&posted), "floodgate; fwd=method");
    upstream.on(
        "/form",
        Behavior::status(200)
            .header("cache-control", "max-age=300")
            .body("got"),
    );
    assert_eq!(client::get(&envoy.url("/form")).text(), "got");
    assert_eq!(upstream.hits("/form"), 2);
}

fn bodies_are_stored_and_replayed_exactly(http2: bool, chunked: bool) {
    let upstream = Upstream::start();
    let envoy = EnvoyBuilder::new()
        .plugin_config(r#"{"cache": {}}"#)
        .upstream(&upstream)
        .upstream_http2(http2)
        .start()
        .unwrap();
    for size in [25_246, 921_600] {
        let path = format!("/body/{size}");
        let body = noise(size, size as u64);
        let mut behavior = Behavior::status(200)
            .header("cache-control", "max-age=300")
            .body(body.clone());
        if chunked {
            behavior = behavior.chunked();
        }
        upstream.on(&path, behavior);
        let first = client::get(&envoy.url(&path));
        assert_eq!(first.body.as_ref(), body.as_slice(), "{path} first");
        let second = client::get(&envoy.url(&path));
        assert_eq!(second.body.as_ref(), body.as_slice(), "{path} replay");
        assert!(
            cache_status(&second).starts_with("floodgate; hit"),
            "{path}: {}",
            cache_status(&second)
        );
        assert_eq!(
            second.header_str("content-length"),
            Some(size.to_string().as_str())
        );
        assert_eq!(upstream.hits(&path), 1, "{path}");
    }
}

#[test]
fn bodies_from_an_http2_upstream_are_replayed_byte_exact() {
    bodies_are_stored_and_replayed_exactly(true, false);
}

#[test]
fn chunked_bodies_from_an_http1_upstream_are_replayed_byte_exact() {
    bodies_are_stored_and_replayed_exactly(false, true);
}

#[test]
fn large_cut_and_partial_bodies_are_never_stored() {
    let upstream = Upstream::start();
    let envoy = envoy_with(r#"{"cache": {}}"#, &upstream);
    let big = noise(3 << 20, 3);
    upstream.on(
        "/big",
        Behavior::status(200)
            .header("cache-control", "max-age=300")
            .body(big.clone()),
    );
    upstream.on(
        "/big-chunked",
        Behavior::status(200)
            .header("cache-control", "max-age=300")
            .body(big.clone())
            .chunked(),
    );
    for path in ["/big", "/big-chunked"] {
        for _ in 0..2 {
            let response = client::get(&envoy.url(path));
            assert_eq!(response.status, 200, "{path}");
            assert_eq!(response.body.len(), big.len(), "{path}");
            assert!(response.body.as_ref() == big.as_slice(), "{path}");
        }
        assert_eq!(upstream.hits(path), 2, "{path}");
    }

    upstream.on(
        "/cut",
        Behavior::status(200)
            .header("cache-control", "max-age=300")
            .body(noise(200_000, 4))
            .cut_mid_body(),
    );
    for _ in 0..2 {
        assert!(client::try_send(&Request::get(&envoy.url("/cut"))).is_err());
    }
    assert_eq!(upstream.hits("/cut"), 2);

    upstream.on(
        "/partial",
        Behavior::status(206)
            .header("cache-control", "max-age=300")
            .header("content-range", "bytes 0-1/10")
            .body("ab"),
    );
    let ranged = get_with(&envoy, "/partial", &[("range", "bytes=0-1")]);
    assert_eq!(
        (ranged.status, cache_status(&ranged)),
        (206, "floodgate; fwd=bypass")
    );
    upstream.on(
        "/partial",
        Behavior::status(200)
            .header("cache-control", "max-age=300")
            .body("whole"),
    );
    let whole = client::get(&envoy.url("/partial"));
    assert_eq!((whole.status, whole.text()), (200, "whole"));
    assert_eq!(upstream.hits("/partial"), 2);
    assert_eq!(stat(&envoy, "stores"), 1);
}

#[test]
fn ages_and_revalidates_with_the_etag() {
    let upstream = Upstream::start();
    let envoy = envoy_with(r#"{"cache": {}}"#, &upstream);
    let body = noise(3_000, 5);
    upstream.on(
        "/r",
        Behavior::status(200)
            .header("cache-control", "max-age=10")
            .header("etag", "\"v1\"")
            .body(body.clone()),
    );
    let first = client::get(&envoy.url("/r"));
    let date = first.header("date").map(<[u8]>::to_vec);

    sleep(Duration::from_secs(4));
    let at_4 = client::get(&envoy.url("/r"));
    assert!((3..=5).contains(&age(&at_4)), "age {}", age(&at_4));
    assert_eq!(
        at_4.header("date").map(<[u8]>::to_vec),
        date,
        "a hit keeps Date"
    );
    assert_eq!(upstream.hits("/r"), 1);

    upstream.on(
        "/r",
        Behavior::status(304)
            .header("cache-control", "max-age=10")
            .header("etag", "\"v1\""),
    );
    sleep(Duration::from_secs(8));
    let at_12 = client::get(&envoy.url("/r"));
    assert_eq!(at_12.status, 200);
    assert_eq!(at_12.body.as_ref(), body.as_slice());
    assert_eq!(
        cache_status(&at_12),
        "floodgate; fwd=stale; fwd-status=304; stored"
    );
    let revalidation = upstream.requests().pop().unwrap();
    assert_eq!(revalidation.header("if-none-match"), Some(&b"\"v1\""[..]));

    sleep(Duration::from_secs(4));
    let at_16 = client::get(&envoy.url("/r"));
    assert!((3..=5).contains(&age(&at_16)), "age {}", age(&at_16));
    assert_eq!(at_16.body.as_ref(), body.as_slice());
    assert_eq!(upstream.hits("/r"), 2);
    assert_eq!(stat(&envoy, "revalidations"), 1);
}

#[test]
fn counts_the_upstream_age_and_ages_undated_answers_from_arrival() {
    let upstream = Upstream::start();
    let envoy = envoy_with(r#"{"cache": {}}"#, &upstream);
    upstream.on(
        "/aged",
        Behavior::status(200)
            .header("cache-control", "max-age=300")
            .header("age", "100")
            .body("old"),
    );
    client::get(&envoy.url("/aged"));
    let hit = client::get(&envoy.url("/aged"));
    assert!((100..=101).contains(&age(&hit)), "age {}", age(&hit));
    assert_eq!(cache_status(&hit), "floodgate; hit; ttl=200");

    // No Date from the upstream: aged from its arrival (Envoy adds a Date
    // on the way out, after this filter has seen the answer).
    upstream.on(
        "/undated",
        Behavior::status(200)
            .header("cache-control", "max-age=10")
            .without_date()
            .body("u"),
    );
    client::get(&envoy.url("/undated"));
    sleep(Duration::from_secs(2));
    let later = client::get(&envoy.url("/undated"));
    assert!(cache_status(&later).starts_with("floodgate; hit"));
    assert!((1..=3).contains(&age(&later)), "age {}", age(&later));
    assert!(
        later.header("date").is_some(),
        "Envoy dates an undated replay"
    );
    assert_eq!(upstream.hits("/undated"), 1);
}

#[test]
fn stale_if_error_scope() {
    let upstream = Upstream::start();
    let timeout_route = Route::new("slow", "/slow")
        .upstream(&upstream)
        .timeout(Duration::from_millis(500));
    let envoy = EnvoyBuilder::new()
        .plugin_config(r#"{"cache": {"stale_if_error": "6s"}}"#)
        .upstream(&upstream)
        .route(timeout_route)
        .start()
        .unwrap();
    let v1 = |extra: &str| {
        Behavior::status(200)
            .header("cache-control", format!("max-age=2{extra}"))
            .body("v1")
    };
    for path in ["/s", "/slow", "/mr"] {
        upstream.on(
            path,
            v1(if path == "/mr" {
                ", must-revalidate"
            } else {
                ""
            }),
        );
        client::get(&envoy.url(path));
    }
    sleep(Duration::from_secs(3));

    upstream.on("/s", Behavior::status(503).body("down"));
    let stale = client::get(&envoy.url("/s"));
    assert_eq!((stale.status, stale.text()), (200, "v1"));
    assert!(age(&stale) >= 3);
    assert!(
        cache_status(&stale).starts_with("floodgate; fwd=stale; fwd-status=503; ttl=-")
            && cache_status(&stale).ends_with("; detail=stale-if-error"),
        "{}",
        cache_status(&stale)
    );
    for status in [404, 403] {
        upstream.on("/s", Behavior::status(status).body("no"));
        let response = client::get(&envoy.url("/s"));
        assert_eq!((response.status, response.text()), (status, "no"));
    }

    upstream.on("/slow", Behavior::status(200).delay(Duration::from_secs(2)));
    let timed_out = client::get(&envoy.url("/slow"));
    assert_eq!((timed_out.status, timed_out.text()), (200, "v1"));
    assert!(
        cache_status(&timed_out).contains("fwd-status=504"),
        "{}",
        cache_status(&timed_out)
    );

    upstream.on("/s", Behavior::reset());
    let reset = client::get(&envoy.url("/s"));
    assert_eq!((reset.status, reset.text()), (200, "v1"));

    upstream.on("/mr", Behavior::status(503).body("down"));
    assert_eq!(client::get(&envoy.url("/mr")).status, 503);

    drop(upstream);
    let refused = client::get(&envoy.url("/s"));
    assert_eq!((refused.status, refused.text()), (200, "v1"));
    assert!(
        cache_status(&refused).contains("fwd-status=503"),
        "{}",
        cache_status(&refused)
    );

    sleep(Duration::from_secs(6));
    assert_eq!(client::get(&envoy.url("/s")).status, 503, "past the window");
    assert!(stat(&envoy, "stale_served") >= 4);

    // Envoy's own answers for a timeout, a reset and a refused connection
    // reach the filter like an upstream's, told apart by their details (Envoy
    // flushes its log file every few seconds).
    for details in [
        "stale answer for a 503 (via_upstream)",
        "stale answer for a 504 (response_timeout)",
        "stale answer for a 503 (upstream_reset_before_response_started{connection_termination",
        "stale answer for a 503 (upstream_reset_before_response_started{remote_connection_failure",
    ] {
        assert!(
            envoy.wait_for_log(details, Duration::from_secs(15)),
            "{details}"
        );
    }
}

#[test]
fn counts_every_decision_in_metrics_with_the_cache_label() {
    let upstream = Upstream::start();
    let envoy = EnvoyBuilder::new()
        .plugin_config(r#"{"cache": {"name": "catalog"}}"#)
        .upstream(&upstream)
        .start()
        .unwrap();
    upstream.on(
        "/m",
        Behavior::status(200)
            .header("cache-control", "max-age=60")
            .body("m"),
    );
    client::get(&envoy.url("/m"));
    client::get(&envoy.url("/m"));
    client::request("POST", &envoy.url("/m"), &[], b"");
    let stat = |metric: &str| envoy.stat(&format!("wasmcustom.floodgate.cache.catalog.{metric}"));
    assert_eq!(stat("hits"), Some(1));
    assert_eq!(stat("misses"), Some(1));
    assert_eq!(stat("stores"), Some(1));
    assert_eq!(stat("bypasses"), Some(1));
    let prometheus = envoy.prometheus();
    assert!(
        prometheus.contains("floodgate_cache_hits{cache=\"catalog\"} 1"),
        "{}",
        prometheus
            .lines()
            .filter(|l| l.contains("floodgate"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Case 8: a flood of distinct URLs through 1000 slots. Slow: run with
/// `make test-long` (or `cargo test -- --ignored`).
#[test]
#[ignore]
fn a_flood_of_urls_keeps_memory_flat_and_hot_entries_hitting() {
    let upstream = Upstream::start();
    upstream.on_any(
        Behavior::status(200)
            .header("cache-control", "max-age=3600")
            .body(vec![b'x'; 512]),
    );
    let envoy = envoy_with(r#"{"cache": {"max_entries": 1000}}"#, &upstream);
    let hot: Vec<String> = (0..20).map(|i| format!("/hot/{i}")).collect();
    for path in &hot {
        client::get(&envoy.url(path));
    }
    let mut baseline = 0;
    let total = 100_000;
    let batch = 50;
    for round in 0..total / batch {
        let responses: Vec<_> = (0..batch)
            .map(|i| Request::get(&envoy.url(&format!("/flood/{}", round * batch + i))))
            .map(|r| client::try_send(&r))
            .collect();
        assert!(responses
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.status == 200)));
        for path in &hot {
            client::get(&envoy.url(path));
        }
        // The harness records every request; keep the test itself small.
        upstream.clear_requests();
        if round == 200 {
            baseline = envoy.memory();
        }
    }
    let end = envoy.memory();
    eprintln!("memory after 10,000 URLs: {baseline}, after {total}: {end}");
    assert!(
        end < baseline + baseline / 10,
        "memory grew from {baseline} to {end}"
    );
    let hot_hits = hot
        .iter()
        .filter(|path| cache_status(&client::get(&envoy.url(path))).starts_with("floodgate; hit"))
        .count();
    eprintln!(
        "{hot_hits} of 20 hot entries hit, {} evictions",
        stat(&envoy, "evictions")
    );
    assert!(hot_hits >= 18, "{hot_hits} of 20 hot entries still hit");
    assert!(stat(&envoy, "evictions") >= total as u64 - 1000);
}
