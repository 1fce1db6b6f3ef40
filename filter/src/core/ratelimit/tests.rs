//! The algorithms with stepped fake time (exact figures), the slot table,
//! and many threads on one store.

use std::cell::Cell;
use std::sync::Arc;
use std::thread;

use super::algorithm::{Decision, State, NANOS_PER_SEC};
use super::table::{Acquired, Table};
use super::*;
use crate::core::store::{Cas, MemoryStore, StoreError, Write};

const MS: u64 = 1_000_000;
const SEC: u64 = NANOS_PER_SEC;
/// Some moment well after the epoch, on a whole hour.
const T0: u64 = 1_800_000_000 * SEC;

fn bucket(limit: u64, period: u64, burst: u64) -> Policy {
    Policy {
        algorithm: Algorithm::TokenBucket { burst },
        limit,
        period,
    }
}

fn fixed(limit: u64, period: u64) -> Policy {
    Policy {
        algorithm: Algorithm::FixedWindow,
        limit,
        period,
    }
}

fn sliding(limit: u64, period: u64) -> Policy {
    Policy {
        algorithm: Algorithm::SlidingWindow,
        limit,
        period,
    }
}

/// One key driven directly through the algorithm, no store.
struct Key {
    policy: Policy,
    state: State,
}

impl Key {
    fn new(policy: Policy) -> Self {
        Self {
            policy,
            state: State::default(),
        }
    }

    fn hit(&mut self, now: u64) -> Decision {
        let decision = self.policy.decide(self.state, 1, now);
        if let Decision::Allowed { state, .. } = decision {
            self.state = state;
        }
        decision
    }

    fn admits(&mut self, now: u64) -> bool {
        matches!(self.hit(now), Decision::Allowed { .. })
    }

    /// Requests every `step` from `start` for `count` requests; how many pass.
    fn run(&mut self, start: u64, step: u64, count: u64) -> u64 {
        (0..count).filter(|i| self.admits(start + i * step)).count() as u64
    }
}

fn retry_after(decision: Decision) -> u64 {
    match decision {
        Decision::Limited { retry_after, .. } => retry_after,
        Decision::Allowed { .. } => panic!("admitted: {decision:?}"),
    }
}

#[test]
fn token_bucket_admits_the_burst_then_the_rate() {
    // 1 token per 2 s, burst 10; a client every 125 ms for 20 s.
    // 160 requests over 19.875 s: 10 tokens, then 9 refills.
    let mut key = Key::new(bucket(1, 2 * SEC, 10));
    assert_eq!(key.run(T0, 125 * MS, 160), 19);
    // After 60 s idle the bucket is full again, and no fuller.
    let later = T0 + 20 * SEC + 60 * SEC;
    assert_eq!(key.run(later, 0, 30), 10);
}

#[test]
fn token_bucket_loses_no_fractions() {
    // Burst 1, 3 per second: a token every 333.33... ms.
    let mut slow = Key::new(bucket(3, SEC, 1));
    assert_eq!(slow.run(T0, 400 * MS, 150), 150);
    // Every 50 ms the request that finds the token is the first one at or
    // after each 333.3 ms, i.e. every 350 ms: 86 in 30 s.
    let mut fast = Key::new(bucket(3, SEC, 1));
    assert_eq!(fast.run(T0, 50 * MS, 600), 86);
    // With room for two, nothing is lost to the grid: on a 1 ms grid the
    // thirds add up exactly, 2 + 3 per second for 29.999 s.
    let mut fine = Key::new(bucket(3, SEC, 2));
    assert_eq!(fine.run(T0, MS, 30_000), 2 + 89);
}

#[test]
fn token_bucket_reports_retry_after_and_reset() {
    let mut key = Key::new(bucket(1, 10 * SEC, 2));
    assert!(matches!(
        key.hit(T0),
        Decision::Allowed { remaining: 1, reset, .. } if reset == 10 * SEC
    ));
    assert!(key.admits(T0));
    assert_eq!(retry_after(key.hit(T0 + 5 * MS)), 10 * SEC - 5 * MS);
    assert_eq!(retry_after(key.hit(T0 + 8_500 * MS)), 1_500 * MS);
    assert!(!key.admits(T0 + 10 * SEC - 1));
    assert!(key.admits(T0 + 10 * SEC));
}

#[test]
fn token_bucket_clamps_debt_written_under_other_numbers() {
    // A state far in the future (a longer period before a reload) owes at
    // most one empty bucket under the new numbers.
    let policy = bucket(10, SEC, 10);
    let state = State {
        time: T0 + 3_600 * SEC,
        current: 0,
        previous: 0,
    };
    assert_eq!(policy.used(state, T0), 10 * u128::from(SEC));
    assert_eq!(retry_after(policy.decide(state, 1, T0)), 100 * MS);
}

#[test]
fn token_bucket_refund_restores_the_token() {
    let policy = bucket(1, 10 * SEC, 2);
    let Decision::Allowed { state, .. } = policy.decide(State::default(), 2, T0) else {
        panic!()
    };
    let refunded = policy.refund(state, 1, T0, T0 + MS);
    assert!(matches!(
        policy.decide(refunded, 1, T0 + MS),
        Decision::Allowed { remaining: 0, .. }
    ));
    assert_eq!(policy.used(policy.refund(state, 2, T0, T0), T0), 0);
}

#[test]
fn fixed_window_counts_per_clock_aligned_window() {
    let mut key = Key::new(fixed(2, 60 * SEC));
    let start = T0 + 45 * SEC; // 15 s before a window ends
    assert!(key.admits(start));
    assert!(
        matches!(key.hit(start), Decision::Allowed { remaining: 0, reset, .. } if reset == 15 * SEC)
    );
    assert_eq!(retry_after(key.hit(start + 100 * MS)), 14_900 * MS);
    assert!(!key.admits(T0 + 60 * SEC - 1));
    assert_eq!(key.run(T0 + 60 * SEC, 0, 5), 2);
    assert_eq!(key.run(T0 + 121 * SEC, 0, 5), 2);
}

#[test]
fn fixed_window_ignores_counts_from_windows_of_another_period() {
    // Written under a 1 s period (a reload changed it to 60 s): not a
    // window of this rule, so it starts afresh.
    let state = State {
        time: T0 + 7 * SEC,
        current: 2,
        previous: 0,
    };
    assert_eq!(fixed(2, 60 * SEC).used(state, T0 + 8 * SEC), 0);
    // A worker whose clock read lags a hair behind counts in the window
    // another worker already opened.
    let next = State {
        time: T0 + 60 * SEC,
        current: 2,
        previous: 0,
    };
    let used = fixed(2, 60 * SEC).used(next, T0 + 60 * SEC - 1);
    assert_eq!(used, u128::from(2 * 60 * SEC));
}

#[test]
fn fixed_window_refund_only_touches_its_window() {
    let policy = fixed(2, SEC);
    let state = State {
        time: T0,
        current: 2,
        previous: 0,
    };
    assert_eq!(policy.refund(state, 1, T0, T0).current, 1);
    // Spent in a window that has ended: nothing to give back.
    let next = policy.refund(state, 1, T0, T0 + SEC);
    assert_eq!(policy.used(next, T0 + SEC), 0);
}

#[test]
fn sliding_window_keeps_to_the_limit_over_any_period() {
    // 5 per 10 s, a request every 500 ms for 40 s, on a few clock phases
    // and with some jitter: 20 pass, at most 6 in any 10 s, never a wait
    // longer than the period.
    for (offset, jitter) in [
        (0, 0),
        (1_300 * MS, 7 * MS),
        (5 * SEC, 29 * MS),
        (9_800 * MS, 13 * MS),
    ] {
        let mut key = Key::new(sliding(5, 10 * SEC));
        let times: Vec<u64> = (0..80)
            .map(|i| T0 + offset + i * 500 * MS + (i * jitter) % (30 * MS))
            .collect();
        let admitted: Vec<u64> = times.iter().copied().filter(|&t| key.admits(t)).collect();
        assert_eq!(admitted.len(), 20, "offset {offset}");
        for &from in &times {
            let in_period = admitted
                .iter()
                .filter(|&&t| t >= from && t < from + 10 * SEC)
                .count();
            assert!(in_period <= 6, "offset {offset}: {in_period} from {from}");
        }
        for pair in admitted.windows(2) {
            assert!(pair[1] - pair[0] < 10 * SEC, "locked out: {pair:?}");
        }
    }
}

#[test]
fn sliding_window_remembers_the_previous_window() {
    // Five, then five 400 ms later: the second five are refused.
    let mut key = Key::new(sliding(5, 10 * SEC));
    assert_eq!(key.run(T0 + 9_800 * MS, 0, 5), 5);
    assert_eq!(key.run(T0 + 10_200 * MS, 0, 5), 0);
    // The same across a window boundary: one request opens the window,
    // four come at 9.8 s, five at 10.2 s.
    let mut key = Key::new(sliding(5, 10 * SEC));
    assert!(key.admits(T0));
    assert_eq!(key.run(T0 + 9_800 * MS, 0, 4), 4);
    assert_eq!(key.run(T0 + 10_200 * MS, 0, 5), 0);
    // Two windows idle: whole again.
    assert_eq!(key.run(T0 + 30 * SEC, 0, 9), 5);
}

#[test]
fn sliding_window_retry_after_is_when_the_estimate_fits() {
    let policy = sliding(5, 10 * SEC);
    // Five in the window before, 2 s into the current one: round(5 * 8/10)
    // = 4 still counts, room for 1.
    let state = State {
        time: T0,
        current: 5,
        previous: 0,
    };
    let now = T0 + 12 * SEC;
    assert!(matches!(
        policy.decide(state, 1, now),
        Decision::Allowed { remaining: 0, .. }
    ));
    // Two fit once round(5 * (10 - e)/10) <= 3, that is e > 3 s.
    assert_eq!(retry_after(policy.decide(state, 2, now)), SEC + 1);
    // A full current window: wait for the next one, then until
    // round(5 * (10 - e)/10) <= 4, e > 1 s.
    let full = State {
        time: T0 + 10 * SEC,
        current: 5,
        previous: 0,
    };
    assert_eq!(retry_after(policy.decide(full, 1, now)), 9 * SEC + 1);
    let Decision::Limited { retry_after, .. } = policy.decide(full, 1, now) else {
        panic!()
    };
    assert!(
        policy.decide(full, 1, now + retry_after - 1) != policy.decide(full, 1, now + retry_after)
    );
    assert!(matches!(
        policy.decide(full, 1, now + retry_after),
        Decision::Allowed { .. }
    ));
}

// --- the table --------------------------------------------------------

fn rule(name: &str, policy: Policy, max_keys: u32) -> Rule {
    Rule {
        name: name.into(),
        matcher: Default::default(),
        key: vec![KeyPart::Header("x-api-key".into())],
        policy,
        cost: 1,
        mode: Mode::Enforce,
        max_keys,
    }
}

fn table(rule: &Rule) -> Table<'_> {
    Table {
        rule: &rule.name,
        slots: rule.max_keys,
        policy: rule.policy,
    }
}

/// A store that counts host calls.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    gets: Cell<u32>,
    sets: Cell<u32>,
}

impl Store for Counting {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Cas)>, StoreError> {
        self.gets.set(self.gets.get() + 1);
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Cas) -> Result<Write, StoreError> {
        self.sets.set(self.sets.get() + 1);
        self.inner.set(key, value, cas)
    }
}

#[test]
fn the_common_path_is_one_get_and_one_set() {
    let rule = rule("r", bucket(100, SEC, 100), 10_000);
    let table = table(&rule);
    let store = Counting::default();
    // Find a fingerprint whose first candidate is its home.
    let fingerprint = 42;
    table.acquire(&store, fingerprint, 1, T0).unwrap();
    store.gets.set(0);
    store.sets.set(0);
    let outcome = table.acquire(&store, fingerprint, 1, T0).unwrap();
    assert!(matches!(outcome, Acquired::Allowed { remaining: 98, .. }));
    assert_eq!((store.gets.get(), store.sets.get()), (1, 1));
}

#[test]
fn candidates_are_distinct_and_inside_the_table() {
    let seven = rule("r", bucket(1, SEC, 1), 7);
    for fingerprint in 0..1_000u64 {
        let slots = table(&seven).candidates(fingerprint.wrapping_mul(0x1234_5678_9abc_def1));
        assert!(!slots.is_empty() && slots.len() <= table::PROBES);
        assert!(slots.iter().all(|&s| s < 7));
        let mut unique = slots.clone();
        unique.dedup();
        assert_eq!(unique.len(), slots.len());
    }
    assert_eq!(
        table(&rule("r", bucket(1, SEC, 1), 1)).candidates(99),
        vec![0]
    );
}

#[test]
fn a_slot_whose_bucket_refilled_is_reused_without_eviction() {
    let rule = rule("r", bucket(1, SEC, 2), 1);
    let table = table(&rule);
    let store = MemoryStore::new();
    assert!(matches!(
        table.acquire(&store, 1, 1, T0),
        Ok(Acquired::Allowed { evicted: false, .. })
    ));
    // Key 1 is whole again after a second: key 2 takes the slot silently.
    let later = T0 + SEC;
    assert!(matches!(
        table.acquire(&store, 2, 2, later),
        Ok(Acquired::Allowed { evicted: false, .. })
    ));
    assert!(matches!(
        table.acquire(&store, 2, 1, later),
        Ok(Acquired::Limited { .. })
    ));
    // Key 1 comes back: its state was whole, so a fresh one is the same
    // answer; it evicts key 2, whose bucket is empty.
    assert!(matches!(
        table.acquire(&store, 1, 2, later),
        Ok(Acquired::Allowed {
            evicted: true,
            remaining: 0,
            ..
        })
    ));
    assert_eq!(store.len(), 1);
}

#[test]
fn a_full_table_evicts_the_candidate_closest_to_whole() {
    let rule = rule("r", fixed(10, 60 * SEC), 3);
    let table = table(&rule);
    let store = MemoryStore::new();
    // Fill the table with three keys, spending 3, 1 and 2.
    let mut keys = Vec::new();
    let mut fingerprint = 0u64;
    while keys.len() < 3 {
        fingerprint += 1;
        if let Ok(Acquired::Allowed {
            evicted: false,
            spend,
            ..
        }) = table.acquire(&store, fingerprint, 1, T0)
        {
            keys.push((fingerprint, spend.slot));
        }
    }
    assert_eq!(store.len(), 3);
    for _ in 0..2 {
        table.acquire(&store, keys[0].0, 1, T0).unwrap();
    }
    table.acquire(&store, keys[2].0, 1, T0).unwrap();
    // A key whose candidates are all three slots evicts key 1 (spent 1).
    let newcomer = (100..).find(|&f| table.candidates(f).len() == 3).unwrap();
    let Ok(Acquired::Allowed {
        evicted: true,
        spend,
        ..
    }) = table.acquire(&store, newcomer, 1, T0)
    else {
        panic!("no eviction")
    };
    assert_eq!(spend.slot, keys[1].1);
    assert_eq!(store.len(), 3);
}

#[test]
fn a_flood_of_keys_keeps_the_table_bounded_and_steady_keys_limited() {
    let rule = rule("r", bucket(5, 3_600 * SEC, 5), 100);
    let table = table(&rule);
    let store = MemoryStore::new();
    for fingerprint in 0..20_000u64 {
        let f = fingerprint.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x55;
        assert!(matches!(
            table.acquire(&store, f, 1, T0),
            Ok(Acquired::Allowed { .. })
        ));
    }
    assert!(store.len() <= 100);
    let steady = 0xabcdef;
    let admitted = (0..10)
        .filter(|_| {
            matches!(
                table.acquire(&store, steady, 1, T0 + SEC),
                Ok(Acquired::Allowed { .. })
            )
        })
        .count();
    assert_eq!(admitted, 5);
}

#[test]
fn first_touches_from_eight_threads_admit_exactly_the_burst() {
    let store = Arc::new(MemoryStore::new());
    // A small table, so keys also meet each other's slots.
    let rule = Arc::new(rule("r", bucket(5, 3_600 * SEC, 5), 64));
    for trial in 0..50u64 {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (store, rule) = (Arc::clone(&store), Arc::clone(&rule));
                thread::spawn(move || {
                    let table = table(&rule);
                    (0..4)
                        .filter(|_| {
                            matches!(
                                table.acquire(&*store, trial + 1, 1, T0),
                                Ok(Acquired::Allowed { .. })
                            )
                        })
                        .count()
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(admitted, 5, "trial {trial}");
    }
}

#[test]
fn many_threads_on_every_algorithm_never_exceed_the_limit() {
    for policy in [
        bucket(1, 3_600 * SEC, 50),
        fixed(50, 3_600 * SEC),
        sliding(50, 3_600 * SEC),
    ] {
        let store = Arc::new(MemoryStore::new());
        let rule = Arc::new(rule("r", policy, 10));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (store, rule) = (Arc::clone(&store), Arc::clone(&rule));
                thread::spawn(move || {
                    (0..40)
                        .filter(|_| {
                            matches!(
                                table(&rule).acquire(&*store, 7, 1, T0),
                                Ok(Acquired::Allowed { .. })
                            )
                        })
                        .count()
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(admitted, 50, "{policy:?}");
    }
}

// --- several rules ----------------------------------------------------

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

// --- property-style checks against simple models ------------------------

/// A small deterministic generator, so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

#[test]
fn token_bucket_matches_a_bucket_of_fractional_tokens() {
    // The model counts tokens in units of 1/period token: it refills `limit`
    // units per ns and holds at most burst * period.
    let mut random = Lcg(7);
    for _ in 0..200 {
        let limit = 1 + random.next(20);
        let period = (1 + random.next(5_000)) * MS;
        let burst = 1 + random.next(10);
        let policy = bucket(limit, period, burst);
        let capacity = u128::from(burst) * u128::from(period);
        let (mut units, mut state, mut now) = (capacity, State::default(), T0);
        for _ in 0..200 {
            let step = random.next(period / limit * 2 + 1);
            now += step;
            units = (units + u128::from(step) * u128::from(limit)).min(capacity);
            let cost = 1 + random.next(burst);
            let need = u128::from(cost) * u128::from(period);
            let model_admits = units >= need;
            match policy.decide(state, cost, now) {
                Decision::Allowed {
                    state: next,
                    remaining,
                    ..
                } => {
                    assert!(model_admits, "{policy:?} at {now}");
                    units -= need;
                    assert_eq!(u128::from(remaining), units / u128::from(period));
                    state = next;
                }
                Decision::Limited { retry_after, .. } => {
                    assert!(!model_admits, "{policy:?} at {now}");
                    // One nanosecond earlier than retry_after is too early.
                    let missing = need - units;
                    assert_eq!(u128::from(retry_after), missing.div_ceil(u128::from(limit)));
                }
            }
        }
    }
}

#[test]
fn reusing_whole_slots_changes_no_answer_and_only_eviction_resets() {
    // Keys refill fast, so their slots are often whole and reused by other
    // keys. The table answers exactly like a map with one state per key,
    // where only an evicted key (all its candidates busy) starts afresh.
    let rule = rule("r", bucket(10, 100 * MS, 3), 24);
    let table = table(&rule);
    let store = MemoryStore::new();
    let mut model: std::collections::HashMap<u64, State> = Default::default();
    let mut random = Lcg(11);
    let mut now = T0;
    let mut reused_slots = std::collections::HashSet::new();
    let mut limited = 0;
    let mut evictions = 0;
    let mut owner: std::collections::HashMap<u32, u64> = Default::default();
    for _ in 0..20_000 {
        now += random.next(20 * MS);
        let key = 1 + random.next(30);
        for _ in 0..1 + random.next(5) {
            let current = model.get(&key).copied().unwrap_or_default();
            let expected = rule.policy.decide(current, 1, now);
            match (table.acquire(&store, key, 1, now).unwrap(), expected) {
                (Acquired::Allowed { evicted, spend, .. }, Decision::Allowed { state, .. }) => {
                    // An evicted key starts afresh; a reused whole slot
                    // leaves its former key's state as it was.
                    let former = owner.insert(spend.slot, key);
                    if evicted {
                        evictions += 1;
                        model.remove(&former.unwrap());
                    }
                    model.insert(key, state);
                    reused_slots.insert((spend.slot, key));
                }
                (Acquired::Limited { .. }, Decision::Limited { .. }) => limited += 1,
                (got, want) => panic!("key {key} at {now}: table {got:?}, model {want:?}"),
            }
        }
    }
    assert!(limited > 1_000, "{limited}");
    assert!((1..200).contains(&evictions), "{evictions}");
    // Thirty keys over the slots: many slots served several keys in turn.
    assert!(reused_slots.len() > 30, "{}", reused_slots.len());
    assert!(store.len() <= 24);
}
