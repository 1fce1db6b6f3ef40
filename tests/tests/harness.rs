//! The harness itself behaves as the other tests assume: resets, delays,
//! bursts, routes and admin reads.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use floodgate_tests::client::{self, Request};
use floodgate_tests::{Behavior, EnvoyBuilder, Route, Upstream};

#[test]
fn upstream_reset_and_route_timeout_reach_the_client_as_envoy_errors() {
    let upstream = Upstream::start();
    upstream.on("/reset", Behavior::reset());
    upstream.on("/slow", Behavior::status(200).delay(Duration::from_secs(5)));
    let envoy = EnvoyBuilder::new()
        .upstream(&upstream)
        .route_timeout(Duration::from_millis(300))
        .start()
        .unwrap();

    let reset = client::get(&envoy.url("/reset"));
    assert_eq!(reset.status, 503);
    // Envoy words a RST from the upstream as "connection termination".
    assert_eq!(
        reset.text(),
        "upstream connect error or disconnect/reset before headers. \
         reset reason: connection termination"
    );

    let started = Instant::now();
    let slow = client::get(&envoy.url("/slow"));
    assert_eq!(slow.status, 504);
    assert!(started.elapsed() < Duration::from_secs(4));

    assert_eq!(envoy.stat("cluster.upstream.upstream_rq_timeout"), Some(1));
    assert_eq!(envoy.stat("cluster.upstream.upstream_rq_503"), Some(1));
}

#[test]
fn burst_sends_every_request_on_its_own_connection() {
    let upstream = Upstream::start();
    let envoy = EnvoyBuilder::new().upstream(&upstream).start().unwrap();

    let responses = client::burst(20, &Request::get(&envoy.url("/many")));

    assert_eq!(responses.len(), 20);
    assert!(responses
        .iter()
        .all(|r| r.status == 200 && r.text() == "/many"));
    assert_eq!(upstream.hits("/many"), 20);
    assert_eq!(envoy.stat("http.floodgate.downstream_cx_total"), Some(20));
}

#[test]
fn routes_go_to_their_own_upstream_or_answer_directly() {
    let main = Upstream::start();
    let other = Upstream::start();
    let envoy = EnvoyBuilder::new()
        .upstream(&main)
        .route_name("main")
        .route(Route::new("other", "/other/").upstream(&other))
        .route(Route::new("local", "/local/"))
        .extra_route_name("alias", "/alias/")
        .start()
        .unwrap();

    assert_eq!(client::get(&envoy.url("/other/x")).text(), "/other/x");
    assert_eq!(client::get(&envoy.url("/local/x")).text(), "direct");
    assert_eq!(client::get(&envoy.url("/alias/x")).text(), "/alias/x");
    assert_eq!(client::get(&envoy.url("/x")).text(), "/x");
    assert_eq!(other.hits("/other/x"), 1);
    assert_eq!(main.hits("/alias/x"), 1);
    assert_eq!(main.hits("/x"), 1);
    assert_eq!(main.requests().len(), 2);
}

#[test]
fn admin_reads_stats_prometheus_and_memory() {
    let envoy = EnvoyBuilder::new().concurrency(1).start().unwrap();
    client::get(&envoy.url("/"));

    assert_eq!(envoy.stat("http.floodgate.downstream_rq_2xx"), Some(1));
    assert_eq!(envoy.stat("no.such.stat"), None);
    assert!(envoy
        .stats()
        .contains("http.floodgate.downstream_rq_total: 1"));
    assert!(envoy
        .prometheus()
        .contains("envoy_http_downstream_rq_total"));
    assert!(envoy.memory() > 1_000_000);
}

#[test]
fn behaviours_change_while_running() {
    let upstream = Upstream::start();
    let envoy = EnvoyBuilder::new().upstream(&upstream).start().unwrap();
    assert_eq!(client::get(&envoy.url("/flip")).status, 200);

    upstream.on("/flip", Behavior::status(500));
    assert_eq!(client::get(&envoy.url("/flip")).status, 500);

    upstream.on_any(Behavior::status(418));
    assert_eq!(client::get(&envoy.url("/elsewhere")).status, 418);
    assert_eq!(upstream.hits("/flip"), 2);
}

#[test]
fn reset_behaviour_aborts_the_tcp_connection() {
    let upstream = Upstream::start();
    upstream.on("/reset", Behavior::reset());
    let mut stream = TcpStream::connect(upstream.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();

    stream
        .write_all(b"GET /reset HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let read = stream.read(&mut [0; 64]);

    assert_eq!(read.unwrap_err().kind(), ErrorKind::ConnectionReset);
    assert_eq!(upstream.hits("/reset"), 1);
}
