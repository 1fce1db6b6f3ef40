//! Property-style checks against simple models, with a seeded generator.

use super::*;
use crate::core::ratelimit::algorithm::{Decision, State};
use crate::core::ratelimit::table::Acquired;
use crate::core::store::MemoryStore;

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
