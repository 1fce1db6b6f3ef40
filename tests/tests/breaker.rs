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
const SETTLE: Duration = Duration::from_millis(50);

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

/// How many distinct Envoy threads logged a line containing `needle`.
fn threads_logging(envoy: &Envoy, needle: &str) -> usize {
    let mut threads: Vec<String> = envoy
        .log()
        .lines()
        .filter(|line| line.contains(needle))
        .filter_map(|line| line.split("][").nth(1).map(str::to_owned))
        .collect();
    threads.sort();
    threads.dedup();
    threads.len()
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

/// Trips breaker `name` on `path` with three 503s (the breakers below trip
/// on three consecutive failures).
fn trip(envoy: &Envoy, upstream: &Upstream, path: &str, name: &str) {
    upstream.on(path, Behavior::status(503));
    for _ in 0..3 {
        get(envoy, path);
    }
    assert_eq!(stat(envoy, name, "state"), 1, "{name} did not open");
}

/// Case 1: a probe whose client hangs up while the upstream takes 30 s is
/// not allowed to keep the breaker half-open for good.
#[test]
fn a_probe_that_never_reports_frees_its_slot() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        r#"{"name": "p", "trip": {"consecutive_failures": 3}, "open_for": "1s",
            "half_open": {"probe_timeout": "3s"}}"#,
    );
    trip(&envoy, &upstream, "/p", "p");
    sleep(Duration::from_secs(1));

    upstream.on("/p", Behavior::status(200).delay(Duration::from_secs(30)));
    let hung_up =
        client::try_send(&Request::get(&envoy.url("/p")).timeout(Duration::from_millis(200)));
    assert!(
        hung_up.is_err(),
        "the client should have given up: {hung_up:?}"
    );
    let gave_up = Instant::now();
    assert_eq!(upstream.hits("/p"), 4, "the probe reached the upstream");

    upstream.on("/p", Behavior::status(200));
    let (next, waited) = until_admitted(&envoy, "/p", "p", Duration::from_secs(5));
    assert_eq!(next.status, 200, "no new probe within {waited:?}");
    assert!(
        gave_up.elapsed() <= Duration::from_secs(1 + 3 + 1),
        "{waited:?}"
    );
    assert_eq!(stat(&envoy, "p", "state"), 0);
    assert_eq!(get(&envoy, "/p").status, 200);
    assert_eq!(stat(&envoy, "p", "closed"), 1);
}

/// Case 1, the other half: a probe still waiting on its upstream loses its
/// slot after `probe_timeout`; the next request probes and closes the
/// breaker, and the stale probe's late failure changes nothing.
#[test]
fn a_probe_slot_held_past_the_probe_timeout_is_reclaimed() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        r#"{"name": "q", "match": {"path_prefix": "/q/"}, "trip": {"consecutive_failures": 3},
            "open_for": "1s", "half_open": {"probe_timeout": "2s"}}"#,
    );
    trip(&envoy, &upstream, "/q/fast", "q");
    upstream.on("/q/fast", Behavior::status(200));
    upstream.on(
        "/q/slow",
        Behavior::status(503).delay(Duration::from_secs(5)),
    );
    sleep(Duration::from_millis(1100));

    let url = envoy.url("/q/slow");
    let stuck = std::thread::spawn(move || client::get(&url));
    sleep(Duration::from_millis(300));
    assert_eq!(upstream.hits("/q/slow"), 1, "the slow probe is in flight");
    let held = Instant::now();
    assert!(
        is_open_answer(&get(&envoy, "/q/fast"), "q"),
        "its slot is held"
    );

    let (next, _) = until_admitted(&envoy, "/q/fast", "q", Duration::from_secs(4));
    assert_eq!(next.status, 200);
    let reclaimed_after = held.elapsed();
    assert!(
        reclaimed_after >= Duration::from_millis(1500),
        "{reclaimed_after:?}"
    );
    assert!(
        reclaimed_after <= Duration::from_millis(2500),
        "{reclaimed_after:?}"
    );
    assert_eq!(stat(&envoy, "q", "state"), 0);

    assert_eq!(stuck.join().unwrap().status, 503);
    sleep(SETTLE);
    assert_eq!(
        stat(&envoy, "q", "state"),
        0,
        "the late failure is not counted"
    );
    assert_eq!(stat(&envoy, "q", "opened"), 1);
}

/// Case 1: a probe that Envoy answers 504 after its route timeout, or whose
/// upstream resets the connection, is a failure and re-opens at once.
#[test]
fn a_timed_out_or_reset_probe_reopens_at_once() {
    let upstream = Upstream::start();
    let envoy = EnvoyBuilder::new()
        .plugin_config(
            r#"{"circuit_breakers": [{"name": "t", "trip": {"consecutive_failures": 3},
                "open_for": "1s", "max_open_for": "1s"}]}"#,
        )
        .concurrency(3)
        .upstream(&upstream)
        .route_timeout(Duration::from_secs(1))
        .start()
        .unwrap();
    trip(&envoy, &upstream, "/t", "t");

    sleep(Duration::from_secs(1));
    upstream.on("/t", Behavior::status(200).delay(Duration::from_secs(3)));
    let (timed_out, _) = until_admitted(&envoy, "/t", "t", Duration::from_secs(3));
    assert_eq!(timed_out.status, 504);
    assert!(is_open_answer(&get(&envoy, "/t"), "t"), "re-opened at once");
    assert_eq!(stat(&envoy, "t", "opened"), 2);

    sleep(Duration::from_secs(1));
    upstream.on("/t", Behavior::reset());
    let (reset, _) = until_admitted(&envoy, "/t", "t", Duration::from_secs(3));
    assert_eq!(reset.status, 503);
    assert!(!is_open_answer(&reset, "t"));
    assert!(is_open_answer(&get(&envoy, "/t"), "t"), "re-opened at once");
    assert_eq!(stat(&envoy, "t", "opened"), 3);
    assert_eq!(stat(&envoy, "t", "failures"), 5);
}

/// Case 3: counters reset on every transition.
#[test]
fn counters_reset_across_transitions() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        r#"{"name": "r", "trip": {"consecutive_failures": 3}, "open_for": "2s",
            "max_open_for": "2s", "half_open": {"probes": 1}}"#,
    );
    upstream.on("/r", Behavior::status(504));
    for _ in 0..3 {
        assert_eq!(get(&envoy, "/r").status, 504);
    }
    assert!(is_open_answer(&get(&envoy, "/r"), "r"));

    // Each failed probe re-opens it with a single failure, not three.
    for opened in 2..=3 {
        let (probe, _) = until_admitted(&envoy, "/r", "r", Duration::from_secs(3));
        assert_eq!(probe.status, 504);
        assert!(is_open_answer(&get(&envoy, "/r"), "r"));
        assert_eq!(stat(&envoy, "r", "opened"), opened);
    }

    upstream.on("/r", Behavior::status(200));
    let (probe, _) = until_admitted(&envoy, "/r", "r", Duration::from_secs(3));
    assert_eq!(probe.status, 200);
    assert_eq!(stat(&envoy, "r", "state"), 0);

    for status in [504, 504, 200, 504, 504] {
        upstream.on("/r", Behavior::status(status));
        assert_eq!(get(&envoy, "/r").status, status);
    }
    assert_eq!(stat(&envoy, "r", "state"), 0);
    upstream.on("/r", Behavior::status(504));
    assert_eq!(get(&envoy, "/r").status, 504);
    assert_eq!(
        stat(&envoy, "r", "state"),
        1,
        "the third 504 in a row opens it"
    );
    assert_eq!(upstream.hits("/r"), 3 + 2 + 1 + 5 + 1);
    assert!(
        threads_logging(&envoy, "breaker r: status") >= 2,
        "the outcomes were all recorded by one worker"
    );
}

/// Half-open lets exactly `probes` requests through, counted across all
/// workers, however many arrive at once.
#[test]
fn a_burst_in_half_open_admits_exactly_the_probes() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        r#"{"name": "h", "trip": {"consecutive_failures": 3}, "open_for": "1s",
            "half_open": {"probes": 2, "successes_to_close": 2}}"#,
    );
    trip(&envoy, &upstream, "/h", "h");
    sleep(Duration::from_millis(1100));

    upstream.on(
        "/h",
        Behavior::status(200).delay(Duration::from_millis(500)),
    );
    let responses = client::burst(24, &Request::get(&envoy.url("/h")));
    let passed = responses.iter().filter(|r| r.status == 200).count();
    let refused = responses.iter().filter(|r| is_open_answer(r, "h")).count();
    assert_eq!((passed, refused), (2, 22));
    assert_eq!(upstream.hits("/h"), 3 + 2);
    assert_eq!(stat(&envoy, "h", "probes"), 2);
    assert_eq!(stat(&envoy, "h", "half_opened"), 1);
    sleep(SETTLE);
    assert_eq!(
        stat(&envoy, "h", "state"),
        0,
        "two successful probes close it"
    );
    assert_eq!(stat(&envoy, "h", "closed"), 1);
    for refusal in responses.iter().filter(|r| r.status == 503) {
        assert_eq!(refusal.header_str("retry-after"), Some("1"));
    }
}

/// Case 4: failure rate over a window, once min_calls were seen.
#[test]
fn opens_on_failure_rate_after_min_calls() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        r#"{"name": "rate", "match": {"path_prefix": "/rate/"},
            "trip": {"failure_rate": 0.5, "min_calls": 20, "window": "10s"}},
           {"name": "aged", "match": {"path_prefix": "/aged/"},
            "trip": {"failure_rate": 0.5, "min_calls": 20, "window": "10s"}}"#,
    );
    upstream.on("/rate/x", Behavior::status(500));
    for _ in 0..19 {
        assert_eq!(get(&envoy, "/rate/x").status, 500);
    }
    assert_eq!(
        stat(&envoy, "rate", "state"),
        0,
        "19 of 19, below min_calls"
    );
    upstream.on("/rate/x", Behavior::status(200));
    assert_eq!(get(&envoy, "/rate/x").status, 200);
    assert_eq!(stat(&envoy, "rate", "state"), 1, "the 20th call opens it");

    // Fifteen failures, then the window moves past them.
    upstream.on("/aged/x", Behavior::status(500));
    for _ in 0..15 {
        get(&envoy, "/aged/x");
    }
    sleep(Duration::from_secs(11));
    upstream.on("/aged/x", Behavior::status(200));
    for _ in 0..15 {
        get(&envoy, "/aged/x");
    }
    upstream.on("/aged/x", Behavior::status(500));
    for _ in 0..5 {
        get(&envoy, "/aged/x");
    }
    assert_eq!(stat(&envoy, "aged", "state"), 0, "5 of 20 in the window");
    for _ in 0..10 {
        get(&envoy, "/aged/x");
    }
    assert_eq!(stat(&envoy, "aged", "state"), 1, "15 of 30 in the window");
}

/// Case 5: slow calls count as failures; fast ones do not.
#[test]
fn slow_calls_count_as_failures() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        r#"{"name": "slow", "failure": {"slow_call": "200ms"},
            "trip": {"consecutive_failures": 3}}"#,
    );
    let slow = Behavior::status(200).delay(Duration::from_millis(400));
    for behavior in [
        slow.clone(),
        slow.clone(),
        Behavior::status(200),
        slow.clone(),
        slow.clone(),
    ] {
        upstream.on("/s", behavior);
        assert_eq!(get(&envoy, "/s").status, 200);
    }
    assert_eq!(
        stat(&envoy, "slow", "state"),
        0,
        "the fast 200 reset the count"
    );
    upstream.on("/s", slow);
    assert_eq!(get(&envoy, "/s").status, 200);
    assert_eq!(stat(&envoy, "slow", "state"), 1);
    assert_eq!(stat(&envoy, "slow", "failures"), 5);
}

/// Case 6: each re-open doubles the open time up to max_open_for; after
/// closing, the next open lasts open_for again.
#[test]
fn backoff_doubles_and_resets_once_closed() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        r#"{"name": "b", "trip": {"consecutive_failures": 3}, "open_for": "1s",
            "max_open_for": "3s"}"#,
    );
    trip(&envoy, &upstream, "/b", "b");
    let retry_after = |envoy: &Envoy| {
        let open = get(envoy, "/b");
        assert!(is_open_answer(&open, "b"), "{open:?}");
        open.header_str("retry-after").unwrap().to_owned()
    };
    let mut periods = vec![retry_after(&envoy)];
    for _ in 0..3 {
        let (probe, _) = until_admitted(&envoy, "/b", "b", Duration::from_secs(4));
        assert_eq!(probe.status, 503);
        periods.push(retry_after(&envoy));
    }
    assert_eq!(periods, ["1", "2", "3", "3"]);

    upstream.on("/b", Behavior::status(200));
    let (probe, _) = until_admitted(&envoy, "/b", "b", Duration::from_secs(4));
    assert_eq!(probe.status, 200);
    trip(&envoy, &upstream, "/b", "b");
    assert_eq!(retry_after(&envoy), "1");
}

/// Case 7: a listener update with the same `vm_id` (file-based LDS) keeps
/// an open breaker open: its state lives in shared data, not in the VMs.
#[test]
fn a_listener_update_keeps_an_open_breaker_open() {
    let upstream = Upstream::start();
    let breaker = r#"{"name": "l", "trip": {"consecutive_failures": 3}, "open_for": "1m"}"#;
    let mut envoy = EnvoyBuilder::new()
        .plugin_config(format!(r#"{{"circuit_breakers": [{breaker}]}}"#))
        .concurrency(3)
        .upstream(&upstream)
        .lds(true)
        .start()
        .unwrap();
    trip(&envoy, &upstream, "/l", "l");
    upstream.on("/l", Behavior::status(200));

    // A changed configuration (another breaker added) with the same vm_id.
    envoy
        .update_plugin_config(&format!(
            r#"{{"circuit_breakers": [{breaker}, {{"name": "other"}}]}}"#
        ))
        .unwrap();
    for _ in 0..6 {
        let response = get(&envoy, "/l");
        assert!(is_open_answer(&response, "l"), "{response:?}");
    }
    assert_eq!(upstream.hits("/l"), 3);
    assert!(envoy.log().matches("configuration accepted").count() >= 8);
}

/// Envoy answers a gRPC request whose upstream refuses connections with a
/// `200` carrying `grpc-status: 14`: the status says nothing, the response
/// flags say connect failure, and that is a failure.
#[test]
fn grpc_connect_failures_count_though_envoy_answers_200() {
    let gone = Upstream::start();
    let envoy = start(
        &gone,
        r#"{"name": "g", "trip": {"consecutive_failures": 2}, "open_for": "1h",
            "max_open_for": "1h"}"#,
    );
    drop(gone);
    let grpc = || {
        let request = Request::new("POST", &envoy.url("/svc.Service/Method"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(vec![0u8; 5])
            .http2();
        let response = client::send(&request);
        sleep(SETTLE);
        response
    };
    for _ in 0..2 {
        let response = grpc();
        assert_eq!(response.status, 200);
        assert_eq!(response.header_str("grpc-status"), Some("14"));
    }
    assert_eq!(stat(&envoy, "g", "failures"), 2);
    assert_eq!(stat(&envoy, "g", "opened"), 1);
    // Envoy turns the open breaker's 503 into gRPC's UNAVAILABLE as well.
    assert_eq!(grpc().header_str("grpc-status"), Some("14"));
    assert_eq!(stat(&envoy, "g", "rejected"), 1);
}

/// Consecutive is in the order calls end: successes that were in flight
/// while failures came in still break the run (F S F S F never opens a
/// breaker of 3).
#[test]
fn successes_ending_between_failures_keep_it_closed() {
    let upstream = Upstream::start();
    upstream.on(
        "/slow-1",
        Behavior::status(200).delay(Duration::from_millis(500)),
    );
    upstream.on(
        "/slow-2",
        Behavior::status(200).delay(Duration::from_millis(1000)),
    );
    upstream.on("/fail", Behavior::status(503));
    let envoy = start(
        &upstream,
        r#"{"name": "f", "trip": {"consecutive_failures": 3}, "open_for": "1h",
            "max_open_for": "1h"}"#,
    );
    let slow = |path: &str| {
        let url = envoy.url(path);
        std::thread::spawn(move || client::get(&url).status)
    };
    let (first, second) = (slow("/slow-1"), slow("/slow-2"));
    sleep(Duration::from_millis(150));
    assert_eq!(get(&envoy, "/fail").status, 503);
    assert_eq!(first.join().unwrap(), 200);
    sleep(SETTLE);
    assert_eq!(get(&envoy, "/fail").status, 503);
    assert_eq!(second.join().unwrap(), 200);
    sleep(SETTLE);
    assert_eq!(get(&envoy, "/fail").status, 503);
    assert_eq!(stat(&envoy, "f", "failures"), 3);
    assert_eq!(stat(&envoy, "f", "opened"), 0);
    assert_eq!(get(&envoy, "/fail").status, 503);
    assert!(!is_open_answer(&get(&envoy, "/fail"), "f"));
}

/// An answer whose headers said 200 but whose body was cut short by an
/// upstream reset is a failure; the same answer complete is a success,
/// which clears the consecutive count.
#[test]
fn an_answer_cut_mid_body_is_a_failure() {
    let upstream = Upstream::start();
    let envoy = start(
        &upstream,
        r#"{"name": "c", "trip": {"consecutive_failures": 2}, "open_for": "1h",
            "max_open_for": "1h"}"#,
    );
    let body = vec![b'x'; 64 * 1024];
    let cut = || {
        upstream.on(
            "/c",
            Behavior::status(200).body(body.clone()).cut_mid_body(),
        );
        assert!(client::try_send(&Request::get(&envoy.url("/c"))).is_err());
        sleep(SETTLE);
    };
    cut();
    assert_eq!(stat(&envoy, "c", "failures"), 1);
    upstream.on("/c", Behavior::status(200).body(body.clone()));
    assert_eq!(get(&envoy, "/c").status, 200);
    cut();
    assert_eq!(stat(&envoy, "c", "opened"), 0, "the 200 cleared the count");
    cut();
    assert_eq!(stat(&envoy, "c", "failures"), 3);
    assert_eq!(stat(&envoy, "c", "opened"), 1);
    assert!(is_open_answer(&get(&envoy, "/c"), "c"));
}

/// Connect failures count when `failure.resets` is on (the default), and
/// are neutral when it is off.
#[test]
fn connect_failures_count_unless_resets_are_off() {
    let gone = Upstream::start();
    let envoy = EnvoyBuilder::new()
        .plugin_config(
            r#"{"circuit_breakers": [
                {"name": "on", "match": {"headers": {"x-breaker": "on"}},
                 "trip": {"consecutive_failures": 2}},
                {"name": "off", "match": {"headers": {"x-breaker": "off"}},
                 "failure": {"resets": false}, "trip": {"consecutive_failures": 2}}]}"#,
        )
        .concurrency(3)
        .upstream(&gone)
        .start()
        .unwrap();
    drop(gone);

    let send = |which: &str| {
        let request = Request::get(&envoy.url("/x")).header("x-breaker", which);
        let response = client::send(&request);
        sleep(SETTLE);
        response
    };
    for _ in 0..4 {
        let response = send("off");
        assert_eq!(response.status, 503);
        assert!(!is_open_answer(&response, "off"), "Envoy's own 503");
    }
    assert_eq!(stat(&envoy, "off", "state"), 0);
    send("on");
    send("on");
    assert!(is_open_answer(&send("on"), "on"));
    assert!(envoy.log().contains("flags 0x20: Failure(Reset(32))"));
}

/// A keyed breaker is refused with a clear error, and Envoy refuses the
/// listener rather than running without its breakers.
#[test]
fn refuses_a_keyed_breaker() {
    let log = EnvoyBuilder::new()
        .plugin_config(r#"{"circuit_breakers": [{"name": "k", "key": ["authority"]}]}"#)
        .start_expect_failure()
        .unwrap();
    assert!(
        log.contains(
            "invalid configuration: circuit_breakers[0].key: keyed breakers are not supported yet"
        ),
        "{log}"
    );
}
