//! Helpers shared by `ratelimit.rs` and `ratelimit_long.rs`: configuration,
//! requests, a paced client and a keep-alive flood client.

// Each test file uses its own subset.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use floodgate_tests::client::{self, Request, Response};
use floodgate_tests::{Envoy, EnvoyBuilder, Upstream};

/// A plugin configuration with the given rules (JSON objects).
pub fn config(rules: &[&str]) -> String {
    format!(r#"{{"rate_limits": [{}]}}"#, rules.join(","))
}

pub fn start(upstream: &Upstream, workers: usize, json: &str) -> Envoy {
    EnvoyBuilder::new()
        .concurrency(workers)
        .plugin_config(json)
        .upstream(upstream)
        .start()
        .unwrap()
}

pub fn get_with(envoy: &Envoy, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = Request::get(&envoy.url(path));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    client::send(&request)
}

pub fn statuses(responses: &[Response]) -> Vec<u16> {
    responses.iter().map(|r| r.status).collect()
}

pub fn count(responses: &[Response], status: u16) -> usize {
    responses.iter().filter(|r| r.status == status).count()
}

/// Sends one request every `step` for `total`, on the same schedule
/// whatever each answer takes, round-robin over eight keep-alive
/// connections (spread over Envoy's workers, with no connection set-up in
/// the timing); returns how many were admitted and when they were due.
pub fn paced(
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

pub async fn connect_all(port: u16, n: usize) -> Vec<KeepAlive> {
    let mut connections = Vec::with_capacity(n);
    for _ in 0..n {
        connections.push(KeepAlive::connect(port).await);
    }
    connections
}

pub fn retry_after(response: &Response) -> u64 {
    response
        .header_str("retry-after")
        .expect("retry-after on a 429")
        .parse()
        .unwrap()
}
pub fn raw_get(port: u16, from: [u8; 4], headers: &[(&str, &str)]) -> u16 {
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

/// the n-th with `x-api-key: flood-<n>`; returns the count per status class.
pub fn flood(port: u16, first: u64, total: u64, connections: usize) -> [u64; 6] {
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

pub async fn keep_alive_worker(port: u16, next: &AtomicU64, end: u64, classes: &[AtomicU64; 6]) {
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
pub struct KeepAlive {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

impl KeepAlive {
    pub async fn connect(port: u16) -> KeepAlive {
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
    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> u16 {
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
pub fn plugin_series(envoy: &Envoy) -> HashSet<String> {
    envoy
        .prometheus()
        .lines()
        .filter(|l| l.starts_with("floodgate_"))
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series.to_owned()))
        .collect()
}
