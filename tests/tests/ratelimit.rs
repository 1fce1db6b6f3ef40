//! Rate limits in a real Envoy with several workers: exact counts across
//! workers, refill over time, `retry-after`, client addresses, bounded
//! memory under a flood of keys, the sliding window and shadow mode.
//!
//! Tests marked `#[ignore = "long: ..."]` take from half a minute to a few
//! minutes; `make test-long` runs them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use floodgate_tests::client::{self, Request, Response};
use floodgate_tests::{Envoy, EnvoyBuilder, Upstream};

/// A plugin configuration with the given rules (JSON objects).
fn config(rules: &[&str]) -> String {
    format!(r#"{{"rate_limits": [{}]}}"#, rules.join(","))
}

fn start(upstream: &Upstream, workers: usize, json: &str) -> Envoy {
    EnvoyBuilder::new()
        .concurrency(workers)
        .plugin_config(json)
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

fn statuses(responses: &[Response]) -> Vec<u16> {
    responses.iter().map(|r| r.status).collect()
}

fn count(responses: &[Response], status: u16) -> usize {
    responses.iter().filter(|r| r.status == status).count()
}

/// Sends one request every `step` for `total`, on the same schedule
/// whatever each answer takes, round-robin over eight keep-alive
/// connections (spread over Envoy's workers, with no connection set-up in
/// the timing); returns how many were admitted and when they were due.
fn paced(
    envoy: &Envoy,
    path: &str,
    key: &str,
    step: Duration,
    total: Duration,
) -> (usize, Vec<Duration>) {
    let port = envoy.listener_port();
    let mut connections: Vec<KeepAlive> =
        floodgate_tests::block_on(async { connect_all(port, 8).await });
    let begin = Instant::now();
    let mut admitted = Vec::new();
    let mut latest = Duration::ZERO;
    let mut sent = 0u32;
    while step * sent < total {
        let due = begin + step * sent;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            sleep(wait);
        }
        latest = latest.max(Instant::now() - due);
        let connection = &mut connections[sent as usize % 8];
        let status = floodgate_tests::block_on(connection.get(path, &[("x-api-key", key)]));
        assert!(status == 200 || status == 429, "{status}");
        if status == 200 {
            admitted.push(due - begin);
        }
        sent += 1;
    }
    eprintln!(
        "paced {key}: {} of {sent} admitted; sent at most {latest:?} late",
        admitted.len()
    );
    (admitted.len(), admitted)
}

async fn connect_all(port: u16, n: usize) -> Vec<KeepAlive> {
    let mut connections = Vec::with_capacity(n);
    for _ in 0..n {
        connections.push(KeepAlive::connect(port).await);
    }
    connections
}

fn retry_after(response: &Response) -> u64 {
    response
        .header_str("retry-after")
        .expect("retry-after on a 429")
        .parse()
        .unwrap()
}

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
fn raw_get(port: u16, from: [u8; 4], headers: &[(&str, &str)]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = String::from("GET / HTTP/1.1\r\nhost: floodgate\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    floodgate_tests::block_on(async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind((std::net::Ipv4Addr::from(from), 0).into())
            .unwrap();
        let mut stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
            .await
            .expect("response within 10 s")
            .unwrap();
        String::from_utf8_lossy(&response[9..12]).parse().unwrap()
    })
}

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

// --- long tests: `make test-long` ---------------------------------------

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
/// the n-th with `x-api-key: flood-<n>`; returns the count per status class.
fn flood(port: u16, first: u64, total: u64, connections: usize) -> [u64; 6] {
    let next = Arc::new(AtomicU64::new(first));
    let end = first + total;
    let classes: Arc<[AtomicU64; 6]> = Arc::new(Default::default());
    floodgate_tests::block_on(async {
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                let (next, classes) = (Arc::clone(&next), Arc::clone(&classes));
                floodgate_tests::runtime().spawn(async move {
                    keep_alive_worker(port, &next, end, &classes).await;
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    std::array::from_fn(|i| classes[i].load(Ordering::Relaxed))
}

async fn keep_alive_worker(port: u16, next: &AtomicU64, end: u64, classes: &[AtomicU64; 6]) {
    let mut connection = KeepAlive::connect(port).await;
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= end {
            return;
        }
        let status = connection
            .get("/flood", &[("x-api-key", &format!("flood-{n}"))])
            .await;
        classes[usize::from(status / 100)].fetch_add(1, Ordering::Relaxed);
    }
}

/// One HTTP/1.1 keep-alive connection that sends a request and reads its
/// response at a time.
struct KeepAlive {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

impl KeepAlive {
    async fn connect(port: u16) -> KeepAlive {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream.set_nodelay(true).unwrap();
        KeepAlive {
            stream,
            buffer: Vec::with_capacity(4096),
        }
    }

    /// `GET path` with `headers`; the status.
    async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut request = format!("GET {path} HTTP/1.1\r\nhost: floodgate\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        self.stream.write_all(request.as_bytes()).await.unwrap();
        // Read one response: headers, then content-length bytes of body.
        self.buffer.clear();
        let mut chunk = [0u8; 4096];
        let (head_end, length) = loop {
            let read = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
                .await
                .expect("response within 10 s")
                .unwrap();
            assert!(read > 0, "connection closed");
            self.buffer.extend_from_slice(&chunk[..read]);
            if let Some(at) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buffer[..at]).to_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                break (at + 4, length);
            }
        };
        while self.buffer.len() < head_end + length {
            let read = self.stream.read(&mut chunk).await.unwrap();
            assert!(read > 0, "connection closed");
            self.buffer.extend_from_slice(&chunk[..read]);
        }
        String::from_utf8_lossy(&self.buffer[9..12])
            .parse()
            .unwrap()
    }
}

/// The plugin's lines in `/stats/prometheus` (names and labels, no values).
fn plugin_series(envoy: &Envoy) -> HashSet<String> {
    envoy
        .prometheus()
        .lines()
        .filter(|l| l.starts_with("floodgate_"))
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series.to_owned()))
        .collect()
}

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
