//! The slot table in shared data: a fixed number of entries, set-associative.
//!
//! A key's fingerprint picks one of `sets` sets; each set has up to
//! [`WAYS`] ways. Each set has a small index value and each way one entry
//! value:
//!
//! - `floodgate/v1/cache/<name>/<set>`: the set index, version 1:
//!   `u8` version, then per way (always [`WAYS`] of them) `u64` fingerprint
//!   (0 = empty), `u64` variant (hash of the `Vary` selection), `u64` last
//!   used, ns since the epoch. 97 bytes.
//! - `floodgate/v1/cache/<name>/<set>/<way>`: the [`Entry`].
//!
//! A lookup reads the index, then the one entry whose fingerprint matches
//! (more only when several `Vary` variants of one URL are stored): two reads
//! on the common path. The entry holds the full key, so a fingerprint
//! collision or a way replaced meanwhile reads as a miss, never as a wrong
//! answer.
//!
//! Storing replaces the way holding the same key and variant, else an empty
//! way, else the least recently used one (use is recorded at most once per
//! [`TOUCH_EVERY`] per entry, so hits rarely write). Keys are never deleted
//! and shared data replaces values in place, so memory is bounded by the
//! number of slots times the largest entry.

use super::entry::Entry;
use super::vary;
use crate::core::request::RequestFacts;
use crate::core::store::{Cas, Store, StoreError, Write, CREATE_IF_ABSENT};

/// Ways per set.
pub const WAYS: u32 = 4;

/// How stale a way's "last used" time may get before a hit refreshes it, ns.
pub const TOUCH_EVERY: u64 = 1_000_000_000;

const INDEX_VERSION: u8 = 1;
const INDEX_LEN: usize = 1 + 24 * WAYS as usize;
/// Retries of the index write when another worker stored into the same set.
const INDEX_RETRIES: u32 = 8;

/// One way of a set index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Way {
    /// The key fingerprint, 0 when empty.
    pub fingerprint: u64,
    /// Hash of the stored `Vary` selection.
    pub variant: u64,
    /// Last stored or hit, ns since the epoch.
    pub used_at: u64,
}

/// A set index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Index {
    /// The ways, in order.
    pub ways: [Way; WAYS as usize],
}

impl Index {
    /// Encodes the index (layout in the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INDEX_LEN);
        out.push(INDEX_VERSION);
        for way in &self.ways {
            for word in [way.fingerprint, way.variant, way.used_at] {
                out.extend_from_slice(&word.to_le_bytes());
            }
        }
        out
    }

    /// Decodes an index; anything else reads as an empty set, which only
    /// costs misses.
    pub fn decode(bytes: &[u8]) -> Self {
        let mut index = Self::default();
        if bytes.len() != INDEX_LEN || bytes.first() != Some(&INDEX_VERSION) {
            return index;
        }
        let words: Vec<u64> = bytes
            .get(1..)
            .unwrap_or_default()
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        for (way, fields) in index.ways.iter_mut().zip(words.chunks_exact(3)) {
            if let [fingerprint, variant, used_at] = *fields {
                *way = Way {
                    fingerprint,
                    variant,
                    used_at,
                };
            }
        }
        index
    }
}

/// What a lookup found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// The entry for the key whose `Vary` selection matches the request.
    pub entry: Option<Entry>,
    /// Some entry for the key exists, with another `Vary` selection.
    pub other_variant: bool,
    /// Stored entries that did not decode (counted, then ignored).
    pub corrupt: u32,
    touch: Option<Touch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Touch {
    set: u32,
    way: usize,
    index: Index,
    cas: Cas,
}

/// How a store ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored; `evicted` when another key's entry was replaced.
    Done {
        /// Another key's entry was replaced.
        evicted: bool,
    },
    /// Other workers kept changing the set index; the entry was written
    /// but is not indexed (a later store of the key retries).
    Contended,
}

/// The table of one cache.
#[derive(Debug)]
pub struct Table<'a, S: Store + ?Sized> {
    store: &'a S,
    name: &'a str,
    sets: u32,
    ways: u32,
}

impl<'a, S: Store + ?Sized> Table<'a, S> {
    /// The table of cache `name` with room for at least `max_entries`
    /// (rounded up to whole sets).
    pub fn new(store: &'a S, name: &'a str, max_entries: u32) -> Self {
        let ways = max_entries.clamp(1, WAYS);
        Self {
            store,
            name,
            sets: max_entries.div_ceil(ways).max(1),
            ways,
        }
    }

    /// The number of slots: `max_entries` rounded up to whole sets.
    pub fn capacity(&self) -> u64 {
        u64::from(self.sets) * u64::from(self.ways)
    }

    fn set_of(&self, fingerprint: u64) -> u32 {
        u32::try_from(fingerprint % u64::from(self.sets)).unwrap_or(0)
    }

    fn index_key(&self, set: u32) -> String {
        format!("floodgate/v1/cache/{}/{set}", self.name)
    }

    fn entry_key(&self, set: u32, way: usize) -> String {
        format!("floodgate/v1/cache/{}/{set}/{way}", self.name)
    }

    /// Finds the entry for `key` (fingerprint `fingerprint`) whose `Vary`
    /// selection matches `request`.
    pub fn find(
        &self,
        fingerprint: u64,
        key: &[u8],
        request: &RequestFacts,
    ) -> Result<Found, StoreError> {
        let fingerprint = nonzero(fingerprint);
        let set = self.set_of(fingerprint);
        let mut found = Found::default();
        let Some((bytes, cas)) = self.store.get(&self.index_key(set))? else {
            return Ok(found);
        };
        let index = Index::decode(&bytes);
        for (way, slot) in index.ways.iter().enumerate().take(self.ways as usize) {
            if slot.fingerprint != fingerprint {
                continue;
            }
            let Some((bytes, _)) = self.store.get(&self.entry_key(set, way))? else {
                continue;
            };
            let Ok(entry) = Entry::decode(&bytes) else {
                found.corrupt += 1;
                continue;
            };
            if nonzero(entry.fingerprint) != fingerprint || entry.key != key {
                continue;
            }
            if vary::matches(&entry.selection, request) {
                found.entry = Some(entry);
                found.touch = Some(Touch {
                    set,
                    way,
                    index,
                    cas,
                });
                return Ok(found);
            }
            found.other_variant = true;
        }
        Ok(found)
    }

    /// Records a hit on what [`Table::find`] found, at most once per
    /// [`TOUCH_EVERY`]: one conditional write, dropped if another worker
    /// changed the set meanwhile (recency is a hint).
    pub fn touch(&self, found: &Found, now: u64) -> Result<(), StoreError> {
        let Some(touch) = found.touch else {
            return Ok(());
        };
        let mut index = touch.index;
        let Some(way) = index.ways.get_mut(touch.way) else {
            return Ok(());
        };
        if way.used_at.saturating_add(TOUCH_EVERY) > now {
            return Ok(());
        }
        way.used_at = now;
        self.store
            .set(&self.index_key(touch.set), &index.encode(), touch.cas)?;
        Ok(())
    }

    /// Stores `entry` (its fingerprint and key already set) as variant
    /// `variant` of its key.
    pub fn insert(
        &self,
        entry: &Entry,
        encoded: &[u8],
        variant: u64,
        now: u64,
    ) -> Result<Stored, StoreError> {
        let fingerprint = nonzero(entry.fingerprint);
        let set = self.set_of(fingerprint);
        let index_key = self.index_key(set);
        let (mut index, mut cas) = match self.store.get(&index_key)? {
            Some((bytes, cas)) => (Index::decode(&bytes), cas),
            None => (Index::default(), CREATE_IF_ABSENT),
        };
        let way = self.choose_way(&index, fingerprint, variant);
        self.store.set(&self.entry_key(set, way), encoded, 0)?;

        for _ in 0..=INDEX_RETRIES {
            let Some(slot) = index.ways.get_mut(way) else {
                return Ok(Stored::Contended);
            };
            let evicted = slot.fingerprint != 0 && slot.fingerprint != fingerprint;
            *slot = Way {
                fingerprint,
                variant,
                used_at: now,
            };
            match self.store.set(&index_key, &index.encode(), cas)? {
                Write::Stored => return Ok(Stored::Done { evicted }),
                Write::CasMismatch => match self.store.get(&index_key)? {
                    Some((bytes, current)) => {
                        index = Index::decode(&bytes);
                        cas = current;
                    }
                    None => {
                        index = Index::default();
                        cas = CREATE_IF_ABSENT;
                    }
                },
            }
        }
        Ok(Stored::Contended)
    }

    /// The same key and variant, else an empty way, else the least recently used.
    fn choose_way(&self, index: &Index, fingerprint: u64, variant: u64) -> usize {
        let ways = index.ways.iter().enumerate().take(self.ways as usize);
        if let Some((i, _)) = ways
            .clone()
            .find(|(_, w)| w.fingerprint == fingerprint && w.variant == variant)
        {
            return i;
        }
        if let Some((i, _)) = ways.clone().find(|(_, w)| w.fingerprint == 0) {
            return i;
        }
        ways.min_by_key(|(_, w)| w.used_at).map_or(0, |(i, _)| i)
    }
}

/// Fingerprint 0 marks an empty way, so a key that hashes to 0 uses 1.
fn nonzero(fingerprint: u64) -> u64 {
    fingerprint.max(1)
}

#[cfg(test)]
mod tests;
