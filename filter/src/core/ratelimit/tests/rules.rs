//! Several rules on one request, shadow mode, missing keys, headers.

use super::*;
use crate::core::hash::KeyHasher;
use crate::core::ratelimit::{headers, Event, Mode, Quota, RateLimits};
use crate::core::request::RequestFacts;
use crate::core::store::MemoryStore;

fn request(api_key: &str) -> RequestFacts {
    RequestFacts {
        method: b"GET".to_vec(),
        path: b"/api/x".to_vec(),
        headers: vec![("x-api-key".into(), api_key.as_bytes().to_vec())],
        ..RequestFacts::default()
    }
}

fn hasher() -> KeyHasher {
    KeyHasher::new([3; 16])
}

#[test]
fn a_request_refused_by_one_rule_spends_nothing_in_the_others() {
    let per_key = rule("per-key", bucket(5, 3_600 * SEC, 5), 100);
    let mut global = rule("global", fixed(2, 3_600 * SEC), 1);
    global.key = vec![];
    let limits = RateLimits {
        rules: vec![per_key, global],
    };
    let store = MemoryStore::new();
    let admit = |key: &str| limits.admit(&store, &hasher(), &request(key), T0 + 100 * SEC);

    assert_eq!(
        admit("a").tightest.map(|q| (q.rule, q.remaining)),
        Some((1, 1))
    );
    assert!(admit("b").refused.is_none());
    let refused = admit("a");
    assert_eq!(refused.refused.map(|r| r.quota.rule), Some(1));
    assert_eq!(refused.events, vec![(1, Event::Limited)]);
    // "a" spent one token only: four are left in per-key.
    let per_key_only = RateLimits {
        rules: vec![limits.rules[0].clone()],
    };
    let left = per_key_only.admit(&store, &hasher(), &request("a"), T0 + 100 * SEC);
    assert_eq!(left.tightest.map(|q| q.remaining), Some(3));
}

#[test]
fn shadow_rules_count_but_never_refuse() {
    let mut shadow = rule("shadow", fixed(2, 3_600 * SEC), 10);
    shadow.mode = Mode::Shadow;
    let limits = RateLimits {
        rules: vec![shadow],
    };
    let store = MemoryStore::new();
    let events: Vec<Event> = (0..5)
        .map(|_| {
            let verdict = limits.admit(&store, &hasher(), &request("k"), T0);
            assert!(verdict.refused.is_none() && verdict.tightest.is_none());
            verdict.events[0].1
        })
        .collect();
    assert_eq!(
        events,
        [
            Event::Allowed,
            Event::Allowed,
            Event::ShadowLimited,
            Event::ShadowLimited,
            Event::ShadowLimited
        ]
    );
}

#[test]
fn requests_without_the_key_share_one_bucket() {
    let limits = RateLimits {
        rules: vec![rule("r", bucket(2, 3_600 * SEC, 2), 100)],
    };
    let store = MemoryStore::new();
    let bare = RequestFacts::default();
    let refused = (0..5)
        .filter(|_| limits.admit(&store, &hasher(), &bare, T0).refused.is_some())
        .count();
    assert_eq!(refused, 3);
}

#[test]
fn headers_follow_the_draft() {
    let rule = rule("per-api-key", bucket(100, SEC, 200), 10);
    let quota = Quota {
        rule: 0,
        remaining: 0,
        reset: 2_500 * MS,
    };
    assert_eq!(headers::policy(&rule), "\"per-api-key\";q=100;w=1");
    assert_eq!(headers::ratelimit(&rule, &quota), "\"per-api-key\";r=0;t=3");
    assert_eq!(headers::retry_after(1), "1");
    assert_eq!(headers::retry_after(3 * SEC), "3");
    assert_eq!(
        headers::body(&rule, 2_100 * MS),
        "{\"error\":\"rate limited\",\"rule\":\"per-api-key\",\"retry_after\":3}\n"
    );
}
