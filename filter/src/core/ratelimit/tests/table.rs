//! The slot table: the common path, reuse, eviction, floods and threads.

use std::sync::Arc;
use std::thread;

use super::*;
use crate::core::ratelimit::table::{self, Acquired};
use crate::core::store::MemoryStore;

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
