//! With an empty configuration the plugin changes nothing: status, headers
//! and bodies pass through byte for byte, in both directions.

use floodgate_tests::client::{self, Request};
use floodgate_tests::{noise, Behavior, EnvoyBuilder, Upstream};

const NON_UTF8: &[u8] = b"caf\xe9";

#[test]
fn passes_statuses_through_unchanged() {
    let upstream = Upstream::start();
    upstream.on("/created", Behavior::status(201).body("made"));
    upstream.on("/missing", Behavior::status(404).body("nope"));
    upstream.on("/down", Behavior::status(503).body("down"));
    let envoy = EnvoyBuilder::new()
        .plugin_config("{}")
        .upstream(&upstream)
        .start()
        .unwrap();

    for (path, status, body) in [
        ("/created", 201, "made"),
        ("/missing", 404, "nope"),
        ("/down", 503, "down"),
    ] {
        let response = client::get(&envoy.url(path));
        assert_eq!(response.status, status, "{path}");
        assert_eq!(response.text(), body, "{path}");
        assert_eq!(upstream.hits(path), 1, "{path}");
    }
}

#[test]
fn passes_headers_through_including_non_utf8_values() {
    let upstream = Upstream::start();
    upstream.on(
        "/h",
        Behavior::status(200)
            .header("x-upstream", NON_UTF8)
            .header("x-plain", "yes")
            .body("ok"),
    );
    let envoy = EnvoyBuilder::new().upstream(&upstream).start().unwrap();

    let response = client::request("GET", &envoy.url("/h"), &[("x-client", NON_UTF8)], b"");

    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-upstream"), Some(NON_UTF8));
    assert_eq!(response.header("x-plain"), Some(&b"yes"[..]));
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-client"), Some(NON_UTF8));
    assert_eq!(seen[0].version, "HTTP/1.1");
}

#[test]
fn passes_large_bodies_through_byte_exact_for_get_post_and_head() {
    let upstream = Upstream::start();
    let download = noise(100 * 1024, 1);
    let upload = noise(100 * 1024, 2);
    upstream.on("/blob", Behavior::status(200).body(download.clone()));
    upstream.on(
        "/stream",
        Behavior::status(200).body(download.clone()).chunked(),
    );
    let envoy = EnvoyBuilder::new().upstream(&upstream).start().unwrap();

    let get = client::get(&envoy.url("/blob"));
    assert_eq!(get.status, 200);
    assert_eq!(get.body.as_ref(), download.as_slice());
    assert_eq!(get.header_str("content-length"), Some("102400"));

    let chunked = client::get(&envoy.url("/stream"));
    assert_eq!(chunked.body.as_ref(), download.as_slice());
    assert_eq!(chunked.header("content-length"), None);

    let post = client::send(&Request::new("POST", &envoy.url("/blob")).body(upload.clone()));
    assert_eq!(post.status, 200);
    assert_eq!(post.body.as_ref(), download.as_slice());

    let head = client::send(&Request::new("HEAD", &envoy.url("/blob")));
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header_str("content-length"), Some("102400"));

    let seen = upstream.requests();
    let methods: Vec<&str> = seen.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["GET", "GET", "POST", "HEAD"]);
    assert_eq!(seen[2].body.as_ref(), upload.as_slice());
    assert_eq!(upstream.hits("/blob"), 3);
}

#[test]
fn passes_through_over_http2_both_sides() {
    let upstream = Upstream::start();
    upstream.on(
        "/h2",
        Behavior::status(202)
            .header("x-upstream", NON_UTF8)
            .body("two"),
    );
    let envoy = EnvoyBuilder::new()
        .upstream(&upstream)
        .upstream_http2(true)
        .start()
        .unwrap();

    let response = client::send(
        &Request::get(&envoy.url("/h2"))
            .http2()
            .header("x-client", NON_UTF8),
    );

    assert_eq!(response.status, 202);
    assert_eq!(response.text(), "two");
    assert_eq!(response.header("x-upstream"), Some(NON_UTF8));
    let seen = upstream.requests();
    assert_eq!(seen[0].version, "HTTP/2.0");
    assert_eq!(seen[0].header("x-client"), Some(NON_UTF8));
}
