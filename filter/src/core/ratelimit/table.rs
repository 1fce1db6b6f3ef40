//! A rule's fixed table of slots in shared data.
//!
//! Slot `i` of rule `r` lives under `floodgate/v1/rl/<r>/<i>`, so a rule
//! never holds more than `max_keys` keys, however many clients there are.
//! A key may live in one of [`PROBES`] candidate slots picked from its
//! fingerprint. Looking a key up:
//!
//! 1. Read the first candidate. If it holds the key's fingerprint, decide
//!    and write it back with the token read: one get and one set, the
//!    common path.
//! 2. Otherwise read the other candidates; use the first that holds the key.
//! 3. A key found nowhere takes the first candidate that is *free*: never
//!    written, holding bytes this build does not read, or holding a state
//!    whose quota is whole again (a full bucket, an empty window), which is
//!    the same as a key never seen, so reusing it changes no answer.
//! 4. If every candidate holds a live key, the one closest to whole is
//!    evicted (counted): its key starts afresh the next time it is seen.
//!
//! Every write is a compare-and-swap on the token read (a missing key is
//! written with [`CREATE_IF_ABSENT`]); on a mismatch the whole lookup starts
//! again, up to a retry budget.
//!
//! The one race the slots leave: whether a slot is free depends on the
//! time, so two workers placing the same new key at nearly the same moment
//! can disagree about a candidate whose key becomes whole just between
//! their reads, and claim two different slots. The key then has two states
//! and, once, up to one extra burst. It takes a new key, a collision on its
//! first candidate and a refill ending within microseconds of both reads.

use super::algorithm::{Decision, Policy, State};
use super::record::Record;
use crate::core::store::{update, Cas, Step, Store, StoreError, Updated, Write, CREATE_IF_ABSENT};

/// How many slots a key may live in.
pub const PROBES: usize = 3;

/// How many times a lookup starts again after losing a compare-and-swap.
/// Each loss means another request on the same slot won, so a burst of `n`
/// concurrent requests on one key never needs more than `n - 1`.
pub const MAX_RETRIES: u32 = 64;

/// One rule's table: where its slots live and how many there are.
#[derive(Debug, Clone, Copy)]
pub struct Table<'a> {
    /// The rule name, part of every slot's key.
    pub rule: &'a str,
    /// The number of slots, at least 1.
    pub slots: u32,
    /// The rule's numbers.
    pub policy: Policy,
}

/// Where a spend was written, so that it can be refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spend {
    /// The slot index.
    pub slot: u32,
    /// The key's fingerprint.
    pub fingerprint: u64,
    /// The time of the spend, in nanoseconds.
    pub at: u64,
    /// The cost spent.
    pub cost: u64,
}

/// How an [`Table::acquire`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// Admitted and written.
    Allowed {
        /// What to refund if another rule refuses the request.
        spend: Spend,
        /// Requests of cost 1 still admissible right now.
        remaining: u64,
        /// Nanoseconds until the quota is whole again.
        reset: u64,
        /// A live key was evicted to make room.
        evicted: bool,
    },
    /// Refused; nothing was written.
    Limited {
        /// Nanoseconds until a request of the same cost would be admitted.
        retry_after: u64,
        /// Nanoseconds until the quota is whole again.
        reset: u64,
    },
    /// Every attempt lost a compare-and-swap; nothing was written.
    Exhausted,
}

/// One candidate slot as read.
struct Candidate {
    slot: u32,
    cas: Cas,
    record: Option<Record>,
}

impl Table<'_> {
    /// The shared-data key of `slot`.
    pub fn slot_key(&self, slot: u32) -> String {
        format!("floodgate/v1/rl/{}/{slot}", self.rule)
    }

    /// The candidate slots of `fingerprint`, first choice first, without
    /// repeats (a small table may give fewer than [`PROBES`]).
    pub fn candidates(&self, fingerprint: u64) -> Vec<u32> {
        let mut slots = Vec::with_capacity(PROBES);
        for probe in 0..PROBES as u64 {
            // Each probe takes different bits of the fingerprint, mixed so
            // that a small table still spreads them.
            let mixed = fingerprint
                .rotate_left(21 * probe as u32)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(32);
            let slot = u32::try_from(mixed % u64::from(self.slots.max(1))).unwrap_or(0);
            if !slots.contains(&slot) {
                slots.push(slot);
            }
        }
        slots
    }

    fn read(&self, store: &(impl Store + ?Sized), slot: u32) -> Result<Candidate, StoreError> {
        let (record, cas) = match store.get(&self.slot_key(slot))? {
            Some((bytes, cas)) => (Record::decode(&bytes, self.policy.algorithm), cas),
            None => (None, CREATE_IF_ABSENT),
        };
        Ok(Candidate { slot, cas, record })
    }

    /// Finds the slot to use for `fingerprint`: its own, a free one, or the
    /// one to evict; with the state to decide on and whether it evicts.
    fn locate(
        &self,
        store: &(impl Store + ?Sized),
        fingerprint: u64,
        now: u64,
    ) -> Result<(Candidate, State, bool), StoreError> {
        let slots = self.candidates(fingerprint);
        let mut read = Vec::with_capacity(slots.len());
        for slot in slots {
            let candidate = self.read(store, slot)?;
            if let Some(record) = candidate.record.filter(|r| r.fingerprint == fingerprint) {
                return Ok((candidate, record.state, false));
            }
            read.push(candidate);
        }
        let used = |c: &Candidate| c.record.map_or(0, |r| self.policy.used(r.state, now));
        let mut best: Option<(u128, Candidate)> = None;
        for candidate in read {
            let candidate_used = used(&candidate);
            if best
                .as_ref()
                .map_or(true, |(least, _)| candidate_used < *least)
            {
                best = Some((candidate_used, candidate));
            }
        }
        match best {
            Some((least, candidate)) => Ok((candidate, State::default(), least > 0)),
            // `candidates` always gives at least one slot.
            None => Err(StoreError("rate limit table has no slots".into())),
        }
    }

    /// Decides a request of `cost` for the key with `fingerprint` at `now`
    /// and writes the spend, exactly, whatever other workers do meanwhile.
    pub fn acquire(
        &self,
        store: &(impl Store + ?Sized),
        fingerprint: u64,
        cost: u64,
        now: u64,
    ) -> Result<Acquired, StoreError> {
        for _ in 0..=MAX_RETRIES {
            let (candidate, state, evicted) = self.locate(store, fingerprint, now)?;
            let (state, remaining, reset) = match self.policy.decide(state, cost, now) {
                Decision::Limited { retry_after, reset } => {
                    return Ok(Acquired::Limited { retry_after, reset })
                }
                Decision::Allowed {
                    state,
                    remaining,
                    reset,
                } => (state, remaining, reset),
            };
            let bytes = Record { fingerprint, state }.encode(self.policy.algorithm);
            let key = self.slot_key(candidate.slot);
            if store.set(&key, &bytes, candidate.cas)? == Write::Stored {
                let spend = Spend {
                    slot: candidate.slot,
                    fingerprint,
                    at: now,
                    cost,
                };
                return Ok(Acquired::Allowed {
                    spend,
                    remaining,
                    reset,
                    evicted,
                });
            }
        }
        Ok(Acquired::Exhausted)
    }

    /// Gives back a spend made by [`Table::acquire`] (another rule refused
    /// the request). A compare-and-swap like every write; a slot that has
    /// changed hands since is left alone. False when the retries ran out.
    pub fn refund(
        &self,
        store: &(impl Store + ?Sized),
        spend: Spend,
        now: u64,
    ) -> Result<bool, StoreError> {
        let key = self.slot_key(spend.slot);
        let outcome = update(store, &key, MAX_RETRIES, |bytes| {
            let record = bytes.and_then(|b| Record::decode(b, self.policy.algorithm));
            match record.filter(|r| r.fingerprint == spend.fingerprint) {
                Some(record) => {
                    let state = self.policy.refund(record.state, spend.cost, spend.at, now);
                    let bytes = Record { state, ..record }.encode(self.policy.algorithm);
                    Step::Write(bytes, ())
                }
                None => Step::Keep(()),
            }
        })?;
        Ok(matches!(outcome, Updated::Done { .. }))
    }
}
