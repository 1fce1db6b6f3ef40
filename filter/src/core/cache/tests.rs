//! The cache's behaviour end to end on a [`MemoryStore`] with stepped time.

use std::sync::Arc;
use std::thread;

use super::*;
use crate::core::hash::KeyHasher;
use crate::core::request::RequestFacts;
use crate::core::store::MemoryStore;

const S: u64 = 1_000_000_000;
/// Wed, 03 Dec 2025 13:00:05 GMT
const T0: u64 = 1_764_766_805 * S;
const DATE_T0: &str = "Wed, 03 Dec 2025 13:00:05 GMT";

struct World {
    store: MemoryStore,
    hasher: KeyHasher,
    config: CacheConfig,
}

impl World {
    fn new() -> Self {
        Self::with(CacheConfig::default())
    }

    fn with(config: CacheConfig) -> Self {
        Self {
            store: MemoryStore::new(),
            hasher: KeyHasher::new([3; 16]),
            config,
        }
    }

    fn cache(&self) -> Cache<'_, MemoryStore> {
        Cache::new(&self.config, &self.store, &self.hasher)
    }

    /// One request through the cache; `upstream` answers forwarded ones.
    fn fetch(&self, request: &RequestFacts, now: u64, upstream: &Upstream) -> Outcome {
        let cache = self.cache();
        match cache.on_request(request, now).unwrap() {
            Plan::Ignore => Outcome::upstream(upstream, None, "ignored"),
            Plan::Bypass(reason) => Outcome::upstream(upstream, None, reason.fwd()),
            Plan::Hit(answer) => Outcome::from_answer(answer, "hit"),
            Plan::Forward(forward) => {
                let headers = h(&upstream
                    .headers
                    .iter()
                    .map(|(n, v)| (*n, v.as_str()))
                    .collect::<Vec<_>>());
                let sent = forward.conditional.clone();
                let mut outcome = match cache
                    .on_response(&forward, upstream.status, &headers, now)
                    .unwrap()
                {
                    Responded::Replace {
                        answer,
                        revalidated,
                        ..
                    } => Outcome::from_answer(
                        answer,
                        if revalidated { "revalidated" } else { "stale" },
                    ),
                    Responded::Pass {
                        cache_status,
                        pending,
                        ..
                    } => {
                        let mut stored = false;
                        if let Some(mut pending) = pending {
                            let body = upstream.delivered.unwrap_or(upstream.body.len());
                            for chunk in upstream.body[..body].chunks(1000) {
                                pending.push(chunk);
                            }
                            stored = cache.store(pending, now).unwrap().is_some();
                        }
                        let mut o = Outcome::upstream(upstream, Some(cache_status), "forwarded");
                        o.stored = stored;
                        o
                    }
                };
                outcome.conditional = sent;
                outcome
            }
        }
    }
}

#[derive(Clone)]
struct Upstream {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// How much of the body arrives before a reset (all when `None`).
    delivered: Option<usize>,
}

fn upstream(status: u16, headers: &[(&'static str, &str)], body: &[u8]) -> Upstream {
    let mut headers: Vec<_> = headers.iter().map(|(n, v)| (*n, v.to_string())).collect();
    headers.push(("content-length", body.len().to_string()));
    Upstream {
        status,
        headers,
        body: body.to_vec(),
        delivered: None,
    }
}

#[derive(Debug)]
struct Outcome {
    kind: &'static str,
    status: u16,
    body: Vec<u8>,
    age: Option<u64>,
    cache_status: Option<String>,
    stored: bool,
    conditional: Vec<(&'static str, Vec<u8>)>,
    content_length: Option<String>,
}

impl Outcome {
    fn upstream(u: &Upstream, cache_status: Option<String>, kind: &'static str) -> Self {
        Self {
            kind,
            status: u.status,
            body: u.body.clone(),
            age: None,
            cache_status,
            stored: false,
            conditional: Vec::new(),
            content_length: None,
        }
    }

    fn from_answer(answer: Answer, kind: &'static str) -> Self {
        let find = |name: &str| {
            answer
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
        };
        Self {
            kind,
            status: answer.status,
            body: answer.body.clone().unwrap_or_default(),
            age: Some(answer.age),
            cache_status: find("cache-status"),
            stored: false,
            conditional: Vec::new(),
            content_length: find("content-length"),
        }
    }
}

use crate::core::request::header_list as h;

fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> RequestFacts {
    RequestFacts {
        method: method.as_bytes().to_vec(),
        path: path.as_bytes().to_vec(),
        authority: b"example.test".to_vec(),
        headers: h(headers),
        ..RequestFacts::default()
    }
}

fn get(path: &str) -> RequestFacts {
    req("GET", path, &[])
}

#[test]
fn a_miss_is_stored_then_hit_with_its_age() {
    let w = World::new();
    let up = upstream(
        200,
        &[("cache-control", "max-age=60"), ("date", DATE_T0)],
        b"hello",
    );
    let first = w.fetch(&get("/a"), T0, &up);
    assert_eq!(first.kind, "forwarded");
    assert_eq!(
        first.cache_status.as_deref(),
        Some("floodgate; fwd=uri-miss; fwd-status=200; stored")
    );
    assert!(first.stored);
    let second = w.fetch(&get("/a"), T0 + 4 * S, &up);
    assert_eq!(
        (second.kind, second.body.as_slice(), second.age),
        ("hit", &b"hello"[..], Some(4))
    );
    assert_eq!(
        second.cache_status.as_deref(),
        Some("floodgate; hit; ttl=56")
    );
    // The query string is part of the key; another authority is another key.
    assert_eq!(w.fetch(&get("/a?x=1"), T0 + 4 * S, &up).kind, "forwarded");
    let mut other = get("/a");
    other.authority = b"other.test".to_vec();
    assert_eq!(w.fetch(&other, T0 + 4 * S, &up).kind, "forwarded");
}

#[test]
fn revalidates_a_stale_entry_with_its_etag() {
    // Case 5: max-age=10 with an ETag.
    let w = World::new();
    let v1 = upstream(
        200,
        &[("cache-control", "max-age=10"), ("etag", "\"v1\"")],
        b"body-v1",
    );
    assert!(w.fetch(&get("/r"), T0, &v1).stored);
    assert_eq!(w.fetch(&get("/r"), T0 + 4 * S, &v1).age, Some(4));

    let not_modified = Upstream {
        status: 304,
        headers: vec![
            ("cache-control", "max-age=10".into()),
            ("etag", "\"v1\"".into()),
        ],
        body: Vec::new(),
        delivered: None,
    };
    let at_12 = w.fetch(&get("/r"), T0 + 12 * S, &not_modified);
    assert_eq!(
        at_12.conditional,
        vec![("if-none-match", b"\"v1\"".to_vec())]
    );
    assert_eq!(
        (at_12.kind, at_12.status, at_12.body.as_slice()),
        ("revalidated", 200, &b"body-v1"[..])
    );
    assert_eq!(at_12.age, Some(0));
    assert_eq!(
        at_12.cache_status.as_deref(),
        Some("floodgate; fwd=stale; fwd-status=304; stored")
    );

    let at_16 = w.fetch(&get("/r"), T0 + 16 * S, &v1);
    assert_eq!((at_16.kind, at_16.age), ("hit", Some(4)));
}

#[test]
fn revalidates_with_last_modified_and_takes_a_new_200() {
    let w = World::new();
    let lm = "Wed, 03 Dec 2025 12:00:00 GMT";
    let v1 = upstream(
        200,
        &[("cache-control", "max-age=1"), ("last-modified", lm)],
        b"v1",
    );
    w.fetch(&get("/lm"), T0, &v1);
    let v2 = upstream(200, &[("cache-control", "max-age=60")], b"v2");
    let out = w.fetch(&get("/lm"), T0 + 2 * S, &v2);
    assert_eq!(
        out.conditional,
        vec![("if-modified-since", lm.as_bytes().to_vec())]
    );
    assert!(out.stored);
    assert_eq!(w.fetch(&get("/lm"), T0 + 3 * S, &v2).body, b"v2");
}

#[test]
fn a_client_conditional_request_gets_no_validators_added() {
    let w = World::new();
    let v1 = upstream(
        200,
        &[("cache-control", "max-age=1"), ("etag", "\"v1\"")],
        b"v1",
    );
    w.fetch(&get("/c"), T0, &v1);
    let own = req("GET", "/c", &[("if-none-match", "\"mine\"")]);
    let out = w.fetch(&own, T0 + 2 * S, &upstream(304, &[], b""));
    assert!(out.conditional.is_empty());
    assert_eq!((out.kind, out.status), ("forwarded", 304));
}

#[test]
fn without_date_a_response_is_aged_from_its_arrival() {
    let w = World::new();
    let up = upstream(200, &[("cache-control", "max-age=10")], b"x");
    w.fetch(&get("/nodate"), T0, &up);
    let again = w.fetch(&get("/nodate"), T0 + 2 * S, &up);
    assert_eq!((again.kind, again.age), ("hit", Some(2)));
}

#[test]
fn an_upstream_age_is_counted_in() {
    let w = World::new();
    let up = upstream(
        200,
        &[
            ("cache-control", "max-age=300"),
            ("age", "100"),
            ("date", DATE_T0),
        ],
        b"x",
    );
    w.fetch(&get("/aged"), T0, &up);
    assert_eq!(w.fetch(&get("/aged"), T0 + S, &up).age, Some(101));
    assert_eq!(w.fetch(&get("/aged"), T0 + 199 * S, &up).kind, "hit");
    assert_eq!(w.fetch(&get("/aged"), T0 + 200 * S, &up).kind, "forwarded");
}

#[test]
fn authorization_keeps_callers_apart() {
    // Case 1: token A, token B, none, A again: four upstream calls.
    let w = World::new();
    let answer = |who: &str| upstream(200, &[("cache-control", "max-age=300")], who.as_bytes());
    let a = req("GET", "/me", &[("authorization", "Bearer A")]);
    let b = req("GET", "/me", &[("authorization", "Bearer B")]);
    let none = get("/me");
    assert_eq!(w.fetch(&a, T0, &answer("A")).kind, "forwarded");
    assert_eq!(w.fetch(&b, T0 + S, &answer("B")).kind, "forwarded");
    assert_eq!(
        w.fetch(&none, T0 + 2 * S, &answer("anon")).kind,
        "forwarded"
    );
    let again = w.fetch(&a, T0 + 3 * S, &answer("A"));
    assert_eq!(
        (again.kind, again.body.as_slice()),
        ("forwarded", &b"A"[..])
    );
    assert_eq!(
        again.cache_status.as_deref(),
        Some("floodgate; fwd=request; fwd-status=200; detail=authorization")
    );
    // The anonymous answer is still there for anonymous callers.
    assert_eq!(w.fetch(&none, T0 + 4 * S, &answer("x")).body, b"anon");
}

#[test]
fn public_answers_may_be_shared_between_authorized_callers() {
    let w = World::new();
    let up = upstream(200, &[("cache-control", "public, max-age=300")], b"shared");
    let a = req("GET", "/pub", &[("authorization", "Bearer A")]);
    let b = req("GET", "/pub", &[("authorization", "Bearer B")]);
    assert!(w.fetch(&a, T0, &up).stored);
    assert_eq!(w.fetch(&b, T0 + S, &up).kind, "hit");
}

#[test]
fn vary_keeps_variants_apart() {
    // Case 2.
    let w = World::new();
    let gz = upstream(
        200,
        &[("cache-control", "max-age=60"), ("vary", "Accept-Encoding")],
        b"GZ",
    );
    let plain = upstream(
        200,
        &[("cache-control", "max-age=60"), ("vary", "accept-encoding")],
        b"PLAIN",
    );
    let gzip_req = req("GET", "/v", &[("accept-encoding", "gzip")]);
    assert!(w.fetch(&gzip_req, T0, &gz).stored);
    let out = w.fetch(&get("/v"), T0 + S, &plain);
    assert_eq!(out.kind, "forwarded");
    assert!(out
        .cache_status
        .unwrap()
        .starts_with("floodgate; fwd=vary-miss"));
    assert_eq!(w.fetch(&get("/v"), T0 + 2 * S, &plain).body, b"PLAIN");
    assert_eq!(w.fetch(&gzip_req, T0 + 2 * S, &plain).body, b"GZ");
}

#[test]
fn vary_on_a_user_header_and_star() {
    let w = World::new();
    let for_user = |u: &str| {
        upstream(
            200,
            &[("cache-control", "max-age=60"), ("vary", "X-User-Id")],
            u.as_bytes(),
        )
    };
    let alice = req("GET", "/u", &[("x-user-id", "alice")]);
    let bob = req("GET", "/u", &[("x-user-id", "bob")]);
    w.fetch(&alice, T0, &for_user("alice"));
    assert_eq!(w.fetch(&bob, T0 + S, &for_user("bob")).kind, "forwarded");
    assert_eq!(w.fetch(&alice, T0 + 2 * S, &for_user("x")).body, b"alice");
    assert_eq!(w.fetch(&bob, T0 + 2 * S, &for_user("x")).body, b"bob");

    let star = upstream(200, &[("cache-control", "max-age=60"), ("vary", "*")], b"*");
    let out = w.fetch(&get("/star"), T0, &star);
    assert!(!out.stored);
    assert_eq!(
        out.cache_status.as_deref(),
        Some("floodgate; fwd=uri-miss; fwd-status=200; detail=vary-star")
    );
    assert_eq!(w.fetch(&get("/star"), T0 + S, &star).kind, "forwarded");
}

#[test]
fn vary_names_and_values_tolerate_case_and_spaces() {
    let w = World::new();
    let up = upstream(
        200,
        &[
            ("cache-control", "max-age=60"),
            ("vary", "Accept-Language,  accept-encoding"),
        ],
        b"x",
    );
    let first = req(
        "GET",
        "/l",
        &[("accept-language", "en,fr"), ("accept-encoding", "gzip")],
    );
    let second = req(
        "GET",
        "/l",
        &[("accept-language", "en, fr"), ("accept-encoding", "gzip")],
    );
    w.fetch(&first, T0, &up);
    assert_eq!(w.fetch(&second, T0 + S, &up).kind, "hit");
}

#[test]
fn head_and_get_share_only_what_get_stored() {
    // Case 3.
    let w = World::new();
    let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let up = upstream(200, &[("cache-control", "max-age=60")], &body);
    let head = req("HEAD", "/file", &[]);
    let first = w.fetch(&head, T0, &up);
    assert_eq!((first.kind, first.stored), ("forwarded", false));
    let got = w.fetch(&get("/file"), T0 + S, &up);
    assert_eq!((got.kind, got.stored), ("forwarded", true));
    let hit = w.fetch(&get("/file"), T0 + 2 * S, &up);
    assert_eq!(hit.body, body);
    let head_hit = w.fetch(&head, T0 + 2 * S, &up);
    assert_eq!(head_hit.kind, "hit");
    assert!(head_hit.body.is_empty());
    assert_eq!(head_hit.content_length.as_deref(), Some("5000"));

    let post = w.fetch(&req("POST", "/file", &[]), T0 + 3 * S, &up);
    assert_eq!(post.kind, "method");
}

#[test]
fn only_complete_200s_within_the_limit_are_stored() {
    // Case 4, natively.
    let w = World::with(CacheConfig {
        max_entry_bytes: 1 << 20,
        ..CacheConfig::default()
    });
    let cc = [("cache-control", "max-age=60")];
    for size in [25_246usize, 921_600] {
        let body: Vec<u8> = (0..size).map(|i| (i * 7 % 256) as u8).collect();
        let path = format!("/b{size}");
        assert!(
            w.fetch(&get(&path), T0, &upstream(200, &cc, &body)).stored,
            "{size}"
        );
        assert_eq!(
            w.fetch(&get(&path), T0 + S, &upstream(500, &[], b"")).body,
            body
        );
    }
    let big = vec![1u8; 3 << 20];
    let out = w.fetch(&get("/big"), T0, &upstream(200, &cc, &big));
    assert!(!out.stored);
    assert_eq!(
        out.cache_status.as_deref(),
        Some("floodgate; fwd=uri-miss; fwd-status=200")
    );
    // Without content-length, the body outgrows the limit on the way.
    let mut chunked = upstream(200, &cc, &big);
    chunked.headers.retain(|(n, _)| *n != "content-length");
    assert!(!w.fetch(&get("/big2"), T0, &chunked).stored);

    let mut cut = upstream(200, &cc, &[5u8; 10_000]);
    cut.delivered = Some(4_000);
    assert!(!w.fetch(&get("/cut"), T0, &cut).stored);
    assert_eq!(w.fetch(&get("/cut"), T0 + S, &cut).kind, "forwarded");

    let partial = upstream(
        206,
        &[
            ("cache-control", "max-age=60"),
            ("content-range", "bytes 0-1/10"),
        ],
        b"ab",
    );
    assert!(!w.fetch(&get("/part"), T0, &partial).stored);
    let ranged = req("GET", "/part", &[("range", "bytes=0-1")]);
    assert_eq!(w.fetch(&ranged, T0, &partial).kind, "bypass");
}

#[test]
fn stale_if_error_scope() {
    // Case 6, natively, with the configured window of 10 s.
    let w = World::with(CacheConfig {
        stale_if_error: 10 * S,
        ..CacheConfig::default()
    });
    let v1 = upstream(200, &[("cache-control", "max-age=2")], b"v1");
    w.fetch(&get("/s"), T0, &v1);
    let failed = w.fetch(&get("/s"), T0 + 3 * S, &upstream(503, &[], b"down"));
    assert_eq!(
        (failed.kind, failed.status, failed.body.as_slice()),
        ("stale", 200, &b"v1"[..])
    );
    assert!(failed.age.unwrap() >= 3);
    assert_eq!(
        failed.cache_status.as_deref(),
        Some("floodgate; fwd=stale; fwd-status=503; ttl=-1; detail=stale-if-error")
    );
    for status in [404, 403, 429] {
        let out = w.fetch(&get("/s"), T0 + 3 * S, &upstream(status, &[], b"no"));
        assert_eq!((out.kind, out.status), ("forwarded", status));
    }
    // Envoy's own 504 for a timeout and 503 for a refused connection.
    assert_eq!(
        w.fetch(&get("/s"), T0 + 4 * S, &upstream(504, &[], b""))
            .body,
        b"v1"
    );
    // Past the window the error passes.
    let late = w.fetch(&get("/s"), T0 + 12 * S, &upstream(503, &[], b"down"));
    assert_eq!((late.kind, late.status), ("forwarded", 503));
}

#[test]
fn the_responses_own_stale_if_error_wins_over_the_configured_one() {
    let w = World::with(CacheConfig {
        stale_if_error: 3600 * S,
        ..CacheConfig::default()
    });
    let v1 = upstream(
        200,
        &[("cache-control", "max-age=2, stale-if-error=5")],
        b"v1",
    );
    w.fetch(&get("/own"), T0, &v1);
    assert_eq!(
        w.fetch(&get("/own"), T0 + 6 * S, &upstream(502, &[], b""))
            .kind,
        "stale"
    );
    assert_eq!(
        w.fetch(&get("/own"), T0 + 8 * S, &upstream(502, &[], b""))
            .kind,
        "forwarded"
    );
}

#[test]
fn must_revalidate_entries_never_stand_in_for_errors() {
    let w = World::with(CacheConfig {
        stale_if_error: 3600 * S,
        ..CacheConfig::default()
    });
    let v1 = upstream(
        200,
        &[("cache-control", "max-age=2, must-revalidate")],
        b"v1",
    );
    w.fetch(&get("/mr"), T0, &v1);
    let out = w.fetch(&get("/mr"), T0 + 3 * S, &upstream(503, &[], b"down"));
    assert_eq!((out.kind, out.status), ("forwarded", 503));
}

#[test]
fn an_open_breaker_gets_a_stale_entry_inside_its_window() {
    // Case 7: the function the breaker's open path calls.
    let w = World::with(CacheConfig {
        stale_if_error: 10 * S,
        ..CacheConfig::default()
    });
    let v1 = upstream(200, &[("cache-control", "max-age=2")], b"v1");
    w.fetch(&get("/o"), T0, &v1);
    let cache = w.cache();
    let (fresh, stale) = cache
        .stale_for_open_breaker(&get("/o"), T0 + S)
        .unwrap()
        .unwrap();
    assert_eq!((fresh.body.as_deref(), stale), (Some(&b"v1"[..]), false));
    let (answer, stale) = cache
        .stale_for_open_breaker(&get("/o"), T0 + 5 * S)
        .unwrap()
        .unwrap();
    assert!(stale);
    assert_eq!(answer.age, 5);
    let status = answer
        .headers
        .iter()
        .find(|(n, _)| n == "cache-status")
        .unwrap();
    assert_eq!(status.1, b"floodgate; hit; ttl=-3; detail=breaker-open");
    assert_eq!(
        cache
            .stale_for_open_breaker(&get("/o"), T0 + 13 * S)
            .unwrap(),
        None
    );
    assert_eq!(
        cache.stale_for_open_breaker(&get("/none"), T0 + S).unwrap(),
        None
    );
    assert_eq!(
        cache
            .stale_for_open_breaker(&req("POST", "/o", &[]), T0 + S)
            .unwrap(),
        None
    );

    let off = World::with(CacheConfig {
        stale_if_error: 10 * S,
        serve_stale_when_open: false,
        ..CacheConfig::default()
    });
    off.fetch(&get("/o"), T0, &v1);
    assert_eq!(
        off.cache()
            .stale_for_open_breaker(&get("/o"), T0 + 5 * S)
            .unwrap(),
        None
    );
}

#[test]
fn degrade_is_the_one_place_that_decides() {
    let config = CacheConfig {
        stale_if_error: 10 * S,
        ..CacheConfig::default()
    };
    let mut entry = Entry::default();
    entry.freshness.stored_at = T0;
    entry.freshness.lifetime = 2 * S;
    let at = T0 + 5 * S;
    assert_eq!(
        degrade(&config, &entry, Failure::Status(500), at),
        Some("stale-if-error")
    );
    assert_eq!(
        degrade(&config, &entry, Failure::Status(599), at),
        Some("stale-if-error")
    );
    assert_eq!(degrade(&config, &entry, Failure::Status(429), at), None);
    assert_eq!(degrade(&config, &entry, Failure::Status(200), at), None);
    assert_eq!(
        degrade(&config, &entry, Failure::BreakerOpen, at),
        Some("breaker-open")
    );
    assert_eq!(
        degrade(&config, &entry, Failure::Status(503), T0 + 12 * S),
        None
    );
    entry.freshness.must_revalidate = true;
    assert_eq!(degrade(&config, &entry, Failure::Status(503), at), None);
}

#[test]
fn request_no_cache_and_max_age_force_a_forward() {
    let up = upstream(
        200,
        &[("cache-control", "max-age=60"), ("etag", "\"e\"")],
        b"x",
    );
    for headers in [
        [("cache-control", "no-cache")],
        [("cache-control", "max-age=1")],
        [("pragma", "no-cache")],
    ] {
        let w = World::new();
        w.fetch(&get("/q"), T0, &up);
        let out = w.fetch(&req("GET", "/q", &headers), T0 + 5 * S, &up);
        assert_eq!(out.kind, "forwarded", "{headers:?}");
        assert!(out
            .cache_status
            .unwrap()
            .starts_with("floodgate; fwd=request"));
    }
    let w = World::new();
    w.fetch(&get("/q"), T0, &up);
    assert_eq!(
        w.fetch(
            &req("GET", "/q", &[("cache-control", "max-age=30")]),
            T0 + 6 * S,
            &up
        )
        .kind,
        "hit"
    );
}

#[test]
fn requests_outside_the_match_are_ignored() {
    let mut config = CacheConfig::default();
    config.matcher.path_prefix = Some(b"/catalog/".to_vec());
    let w = World::with(config);
    let up = upstream(200, &[("cache-control", "max-age=60")], b"x");
    assert_eq!(w.fetch(&get("/other"), T0, &up).kind, "ignored");
    assert!(w.fetch(&get("/catalog/1"), T0, &up).stored);
}

#[test]
fn many_threads_share_one_cache() {
    let world = Arc::new(World::with(CacheConfig {
        max_entries: 64,
        ..CacheConfig::default()
    }));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let world = Arc::clone(&world);
            thread::spawn(move || {
                for i in 0..500u64 {
                    let path = format!("/k{}", (i * 13 + t) % 200);
                    let up = upstream(200, &[("cache-control", "max-age=60")], path.as_bytes());
                    let out = world.fetch(&get(&path), T0 + i * S / 100, &up);
                    assert_eq!(out.body, path.as_bytes(), "{}", out.kind);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(world.store.len() <= 16 * 5);
}
