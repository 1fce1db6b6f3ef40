//! The algorithms with stepped fake time (exact figures), the slot table,
//! many threads on one store, several rules, and property-style checks
//! against simple models.

mod algorithms;
mod models;
mod rules;
mod table;

use std::cell::Cell;

use super::algorithm::{Decision, State, NANOS_PER_SEC};
use super::table::Table;
use super::*;
use crate::core::store::{Cas, MemoryStore, StoreError, Write};

pub(super) const MS: u64 = 1_000_000;
pub(super) const SEC: u64 = NANOS_PER_SEC;
/// Some moment well after the epoch, on a whole hour.
pub(super) const T0: u64 = 1_800_000_000 * SEC;

pub(super) fn bucket(limit: u64, period: u64, burst: u64) -> Policy {
    Policy {
        algorithm: Algorithm::TokenBucket { burst },
        limit,
        period,
    }
}

pub(super) fn fixed(limit: u64, period: u64) -> Policy {
    Policy {
        algorithm: Algorithm::FixedWindow,
        limit,
        period,
    }
}

pub(super) fn sliding(limit: u64, period: u64) -> Policy {
    Policy {
        algorithm: Algorithm::SlidingWindow,
        limit,
        period,
    }
}

/// One key driven directly through the algorithm, no store.
pub(super) struct Key {
    pub(super) policy: Policy,
    pub(super) state: State,
}

impl Key {
    pub(super) fn new(policy: Policy) -> Self {
        Self {
            policy,
            state: State::default(),
        }
    }

    pub(super) fn hit(&mut self, now: u64) -> Decision {
        let decision = self.policy.decide(self.state, 1, now);
        if let Decision::Allowed { state, .. } = decision {
            self.state = state;
        }
        decision
    }

    pub(super) fn admits(&mut self, now: u64) -> bool {
        matches!(self.hit(now), Decision::Allowed { .. })
    }

    /// Requests every `step` from `start` for `count` requests; how many pass.
    pub(super) fn run(&mut self, start: u64, step: u64, count: u64) -> u64 {
        (0..count).filter(|i| self.admits(start + i * step)).count() as u64
    }
}

pub(super) fn retry_after(decision: Decision) -> u64 {
    match decision {
        Decision::Limited { retry_after, .. } => retry_after,
        Decision::Allowed { .. } => panic!("admitted: {decision:?}"),
    }
}

pub(super) fn rule(name: &str, policy: Policy, max_keys: u32) -> Rule {
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

pub(super) fn table(rule: &Rule) -> Table<'_> {
    Table {
        rule: &rule.name,
        slots: rule.max_keys,
        policy: rule.policy,
    }
}

/// A store that counts host calls.
#[derive(Default)]
pub(super) struct Counting {
    pub(super) inner: MemoryStore,
    pub(super) gets: Cell<u32>,
    pub(super) sets: Cell<u32>,
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
