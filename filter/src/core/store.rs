//! The process-wide key-value store the filter keeps its state in.
//!
//! Envoy's shared data is the one store every worker's VM can see. Its rules,
//! which [`Store`] implementations must follow exactly:
//!
//! - `get` returns the value and a CAS token (never 0), or nothing.
//! - `set` with CAS 0 always succeeds; so does `set` on a key that does not
//!   exist yet, whatever the CAS. Otherwise a CAS that differs from the key's
//!   current token fails with a mismatch and changes nothing.
//! - Every successful `set` gives the key a new token from one process-wide
//!   counter that starts at 1 and skips 0 when it wraps.
//! - Keys are never deleted.
//!
//! Nothing here writes blind: [`update`] reads, decides, and writes back with
//! the token it read, retrying a bounded number of times.

use std::collections::HashMap;
use std::sync::Mutex;

/// A CAS token as handed out by the store.
pub type Cas = u32;

/// The token used to create a key that was found missing.
///
/// On a missing key any token succeeds; on a key that another worker created
/// in the meantime this one fails with a mismatch, because a live key only
/// holds this token after the counter wrapped to exactly `u32::MAX` on that
/// very key's last write. That makes "create if absent" race-free in practice,
/// which a CAS of 0 (an unconditional write) would not be.
pub const CREATE_IF_ABSENT: Cas = u32::MAX;

/// How a conditional write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// The value was stored.
    Stored,
    /// Another writer changed the key since it was read; nothing was stored.
    CasMismatch,
}

/// A host call failed in a way the store does not expect (not a mismatch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shared data: {}", self.0)
    }
}

/// Envoy's shared-data semantics; see the module documentation.
pub trait Store {
    /// The value under `key` and its CAS token, or `None` if the key was never set.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Cas)>, StoreError>;

    /// Stores `value` under `key` if `cas` is 0, the key is missing, or `cas`
    /// is the key's current token.
    fn set(&self, key: &str, value: &[u8], cas: Cas) -> Result<Write, StoreError>;
}

/// What the closure given to [`update`] decided.
pub enum Step<T> {
    /// Write these bytes back (conditionally), then return `T`.
    Write(Vec<u8>, T),
    /// Leave the stored value as it is and return `T`.
    Keep(T),
}

/// How an [`update`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Updated<T> {
    /// The decision was applied to the value current at the time of writing.
    Done {
        /// The closure's answer for the value it last saw.
        value: T,
        /// How many times another writer got in between and the loop re-read.
        retries: u32,
    },
    /// Every attempt lost to another writer; nothing was written.
    Exhausted,
}

/// Reads `key`, lets `decide` compute the next value from the current one
/// (`None` when missing), and writes it back with the token read, retrying
/// up to `max_retries` times when another writer got in between.
pub fn update<S, T, F>(
    store: &S,
    key: &str,
    max_retries: u32,
    mut decide: F,
) -> Result<Updated<T>, StoreError>
where
    S: Store + ?Sized,
    F: FnMut(Option<&[u8]>) -> Step<T>,
{
    let mut retries = 0;
    loop {
        let current = store.get(key)?;
        let (bytes, cas) = match &current {
            Some((bytes, cas)) => (Some(bytes.as_slice()), *cas),
            None => (None, CREATE_IF_ABSENT),
        };
        match decide(bytes) {
            Step::Keep(value) => return Ok(Updated::Done { value, retries }),
            Step::Write(next, value) => match store.set(key, &next, cas)? {
                Write::Stored => return Ok(Updated::Done { value, retries }),
                Write::CasMismatch if retries < max_retries => retries += 1,
                Write::CasMismatch => return Ok(Updated::Exhausted),
            },
        }
    }
}

/// An in-memory [`Store`] with Envoy's rules, safe to share between threads.
///
/// Tests use it in place of shared data; it copies Envoy's token counter
/// too, so a test can wrap it.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    entries: HashMap<String, (Vec<u8>, Cas)>,
    last_cas: Cas,
}

impl MemoryInner {
    fn next_cas(&mut self) -> Cas {
        self.last_cas = self.last_cas.wrapping_add(1);
        if self.last_cas == 0 {
            self.last_cas = 1;
        }
        self.last_cas
    }
}

impl MemoryStore {
    /// An empty store whose next token is 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose next token is `last + 1` (0 is skipped).
    pub fn with_last_cas(last: Cas) -> Self {
        let store = Self::default();
        if let Ok(mut inner) = store.inner.lock() {
            inner.last_cas = last;
        }
        store
    }

    /// The number of keys ever set.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .map(|inner| inner.entries.len())
            .unwrap_or(0)
    }

    /// True when no key was ever set.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Cas)>, StoreError> {
        let inner = self
            .inner
            .lock()
            .map_err(|_| StoreError("poisoned".into()))?;
        Ok(inner.entries.get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], cas: Cas) -> Result<Write, StoreError> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| StoreError("poisoned".into()))?;
        if let Some((_, current)) = inner.entries.get(key) {
            if cas != 0 && cas != *current {
                return Ok(Write::CasMismatch);
            }
        }
        let token = inner.next_cas();
        inner
            .entries
            .insert(key.to_owned(), (value.to_vec(), token));
        Ok(Write::Stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn get_of_a_missing_key_is_none() {
        assert_eq!(MemoryStore::new().get("k"), Ok(None));
    }

    #[test]
    fn set_on_a_missing_key_succeeds_with_any_cas() {
        let store = MemoryStore::new();
        assert_eq!(store.set("a", b"1", 0), Ok(Write::Stored));
        assert_eq!(store.set("b", b"1", 12345), Ok(Write::Stored));
        assert_eq!(store.get("b"), Ok(Some((b"1".to_vec(), 2))));
    }

    #[test]
    fn stale_cas_fails_and_changes_nothing() {
        let store = MemoryStore::new();
        store.set("k", b"first", 0).unwrap();
        let (_, cas) = store.get("k").unwrap().unwrap();
        assert_eq!(store.set("k", b"second", cas), Ok(Write::Stored));
        assert_eq!(store.set("k", b"third", cas), Ok(Write::CasMismatch));
        assert_eq!(store.get("k").unwrap().unwrap().0, b"second");
    }

    #[test]
    fn cas_zero_always_overwrites() {
        let store = MemoryStore::new();
        store.set("k", b"first", 0).unwrap();
        store.set("k", b"second", 0).unwrap();
        assert_eq!(store.get("k").unwrap().unwrap().0, b"second");
    }

    #[test]
    fn token_counter_skips_zero_when_it_wraps() {
        let store = MemoryStore::with_last_cas(u32::MAX - 1);
        store.set("a", b"", 0).unwrap();
        store.set("b", b"", 0).unwrap();
        assert_eq!(store.get("a").unwrap().unwrap().1, u32::MAX);
        assert_eq!(store.get("b").unwrap().unwrap().1, 1);
    }

    #[test]
    fn create_if_absent_loses_to_a_key_created_meanwhile() {
        let store = MemoryStore::new();
        assert_eq!(store.get("k"), Ok(None));
        store.set("k", b"other worker", 0).unwrap();
        assert_eq!(
            store.set("k", b"mine", CREATE_IF_ABSENT),
            Ok(Write::CasMismatch)
        );
    }

    fn increment(store: &MemoryStore, key: &str) -> Updated<u64> {
        update(store, key, u32::MAX, |bytes| {
            let n = bytes
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .unwrap_or(0);
            Step::Write((n + 1).to_le_bytes().to_vec(), n + 1)
        })
        .unwrap()
    }

    #[test]
    fn concurrent_updates_from_many_threads_lose_nothing() {
        let store = Arc::new(MemoryStore::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                thread::spawn(move || {
                    for _ in 0..2_000 {
                        assert!(matches!(increment(&store, "counter"), Updated::Done { .. }));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let (bytes, _) = store.get("counter").unwrap().unwrap();
        assert_eq!(u64::from_le_bytes(bytes.try_into().unwrap()), 16_000);
    }

    #[test]
    fn update_gives_up_after_the_retry_budget() {
        struct AlwaysLoses(MemoryStore);
        impl Store for AlwaysLoses {
            fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Cas)>, StoreError> {
                let current = self.0.get(key);
                self.0.set(key, b"meanwhile", 0)?;
                current
            }
            fn set(&self, key: &str, value: &[u8], cas: Cas) -> Result<Write, StoreError> {
                self.0.set(key, value, cas)
            }
        }
        let store = AlwaysLoses(MemoryStore::new());
        store.0.set("k", b"x", 0).unwrap();
        let mut calls = 0;
        let outcome = update(&store, "k", 3, |_| {
            calls += 1;
            Step::Write(b"mine".to_vec(), ())
        });
        assert_eq!(outcome, Ok(Updated::Exhausted));
        assert_eq!(calls, 4);
    }

    #[test]
    fn keep_writes_nothing() {
        let store = MemoryStore::new();
        let outcome = update(&store, "k", 0, |_| Step::Keep(7)).unwrap();
        assert_eq!(
            outcome,
            Updated::Done {
                value: 7,
                retries: 0
            }
        );
        assert!(store.is_empty());
    }
}
