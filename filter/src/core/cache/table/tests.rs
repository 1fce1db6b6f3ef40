use std::sync::Arc;
use std::thread;

use super::*;
use crate::core::store::MemoryStore;

const S: u64 = 1_000_000_000;

fn entry(fingerprint: u64, key: &str, selection: vary::Selection) -> Entry {
    Entry {
        fingerprint,
        status: 200,
        key: key.as_bytes().to_vec(),
        selection,
        body: key.as_bytes().to_vec(),
        ..Entry::default()
    }
}

fn put(table: &Table<MemoryStore>, e: &Entry, variant: u64, now: u64) -> Stored {
    table.insert(e, &e.encode().unwrap(), variant, now).unwrap()
}

use crate::core::request::with_headers as request;

#[test]
fn finds_what_it_stored_and_nothing_else() {
    let store = MemoryStore::new();
    let table = Table::new(&store, "t", 100);
    let e = entry(42, "a", vec![]);
    assert_eq!(put(&table, &e, 0, S), Stored::Done { evicted: false });
    let found = table.find(42, b"a", &request(&[])).unwrap();
    assert_eq!(found.entry, Some(e));
    assert_eq!(table.find(43, b"b", &request(&[])).unwrap().entry, None);
}

#[test]
fn a_fingerprint_collision_is_a_miss_not_a_wrong_answer() {
    let store = MemoryStore::new();
    let table = Table::new(&store, "t", 100);
    put(&table, &entry(42, "a", vec![]), 0, S);
    let found = table.find(42, b"other", &request(&[])).unwrap();
    assert_eq!(found.entry, None);
    assert!(!found.other_variant);
}

#[test]
fn vary_variants_live_side_by_side() {
    let store = MemoryStore::new();
    let table = Table::new(&store, "t", 100);
    let gzip = vec![("accept-encoding".to_owned(), Some(b"gzip".to_vec()))];
    let plain = vec![("accept-encoding".to_owned(), None)];
    put(&table, &entry(7, "u", gzip.clone()), 1, S);
    put(&table, &entry(7, "u", plain.clone()), 2, S);
    let found = table.find(7, b"u", &request(&[])).unwrap();
    assert_eq!(found.entry.unwrap().selection, plain);
    let found = table
        .find(7, b"u", &request(&[("accept-encoding", "gzip")]))
        .unwrap();
    assert_eq!(found.entry.unwrap().selection, gzip);
    let found = table
        .find(7, b"u", &request(&[("accept-encoding", "br")]))
        .unwrap();
    assert!(found.entry.is_none() && found.other_variant);
}

#[test]
fn storing_the_same_variant_again_replaces_it_in_place() {
    let store = MemoryStore::new();
    let table = Table::new(&store, "t", 4);
    for i in 0..10 {
        let mut e = entry(9, "k", vec![]);
        e.body = vec![i];
        assert_eq!(
            put(&table, &e, 0, i as u64 * S),
            Stored::Done { evicted: false }
        );
    }
    assert_eq!(store.len(), 2, "one index and one entry");
    assert_eq!(
        table
            .find(9, b"k", &request(&[]))
            .unwrap()
            .entry
            .unwrap()
            .body,
        vec![9]
    );
}

#[test]
fn evicts_the_least_recently_used_way() {
    let store = MemoryStore::new();
    let table = Table::new(&store, "t", 4);
    assert_eq!(table.capacity(), 4);
    for i in 1..=4u64 {
        put(&table, &entry(i, &i.to_string(), vec![]), 0, i * S);
    }
    // A hit on the oldest makes the second-oldest the victim.
    let found = table.find(1, b"1", &request(&[])).unwrap();
    table.touch(&found, 10 * S).unwrap();
    assert_eq!(
        put(&table, &entry(5, "5", vec![]), 0, 11 * S),
        Stored::Done { evicted: true }
    );
    assert!(table.find(1, b"1", &request(&[])).unwrap().entry.is_some());
    assert!(table.find(2, b"2", &request(&[])).unwrap().entry.is_none());
    for i in 3..=5u64 {
        assert!(table
            .find(i, i.to_string().as_bytes(), &request(&[]))
            .unwrap()
            .entry
            .is_some());
    }
}

#[test]
fn touch_writes_at_most_once_per_second() {
    let store = MemoryStore::new();
    let table = Table::new(&store, "t", 4);
    put(&table, &entry(1, "1", vec![]), 0, 10 * S);
    let (_, before) = store.get("floodgate/v1/cache/t/0").unwrap().unwrap();
    let found = table.find(1, b"1", &request(&[])).unwrap();
    table.touch(&found, 10 * S + S / 2).unwrap();
    assert_eq!(
        store.get("floodgate/v1/cache/t/0").unwrap().unwrap().1,
        before
    );
    table.touch(&found, 12 * S).unwrap();
    assert_ne!(
        store.get("floodgate/v1/cache/t/0").unwrap().unwrap().1,
        before
    );
}

#[test]
fn memory_stays_bounded_under_a_flood_of_keys() {
    let store = MemoryStore::new();
    let table = Table::new(&store, "t", 1000);
    let mut evictions = 0;
    for i in 0..20_000u64 {
        let fp = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if let Stored::Done { evicted: true } =
            put(&table, &entry(fp, &i.to_string(), vec![]), 0, i)
        {
            evictions += 1;
        }
    }
    // 250 sets: one index and four entries each.
    assert_eq!(store.len(), 250 * 5);
    assert_eq!(evictions, 20_000 - 1000);
}

#[test]
fn corrupt_entries_and_indexes_read_as_misses() {
    let store = MemoryStore::new();
    let table = Table::new(&store, "t", 4);
    put(&table, &entry(1, "1", vec![]), 0, S);
    store
        .set("floodgate/v1/cache/t/0/0", b"\x01garbage", 0)
        .unwrap();
    let found = table.find(1, b"1", &request(&[])).unwrap();
    assert_eq!((found.entry, found.corrupt), (None, 1));
    store.set("floodgate/v1/cache/t/0", b"\x07", 0).unwrap();
    assert_eq!(
        table.find(1, b"1", &request(&[])).unwrap(),
        Found::default()
    );
    assert_eq!(Index::decode(&Index::default().encode()), Index::default());
}

#[test]
fn a_table_smaller_than_a_set_uses_fewer_ways() {
    let store = MemoryStore::new();
    let table = Table::new(&store, "t", 2);
    assert_eq!(table.capacity(), 2);
    for i in 1..=5u64 {
        put(&table, &entry(i, &i.to_string(), vec![]), 0, i * S);
    }
    assert_eq!(store.len(), 3);
}

#[test]
fn many_threads_storing_and_reading_never_see_a_wrong_entry() {
    let store = Arc::new(MemoryStore::new());
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                let table = Table::new(&*store, "t", 16);
                for i in 0..2_000u64 {
                    let k = (i * 7 + t) % 64;
                    let key = k.to_string();
                    let fp = k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    if i % 3 == 0 {
                        table
                            .insert(
                                &entry(fp, &key, vec![]),
                                &entry(fp, &key, vec![]).encode().unwrap(),
                                0,
                                i,
                            )
                            .unwrap();
                    } else if let Some(e) =
                        table.find(fp, key.as_bytes(), &request(&[])).unwrap().entry
                    {
                        assert_eq!(e.body, key.as_bytes());
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(store.len() <= 4 * 5);
}
