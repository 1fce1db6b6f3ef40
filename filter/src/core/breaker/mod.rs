//! Circuit breakers: closed, open and half-open, with the whole state of a
//! breaker in one shared-data record (see [`record`]) updated by
//! compare-and-swap, so every worker sees the same state and exactly one
//! worker makes each transition.
//!
//! # The state machine
//!
//! ```text
//!            (1) trip                         (2) open period over
//!   CLOSED ───────────────▶ OPEN ─────────────────────────────▶ HALF-OPEN
//!     ▲                      ▲                                      │
//!     │                      └──────────── (4) a probe failed ──────┤
//!     └──────────────── (3) successes_to_close probes succeeded ────┘
//! ```
//!
//! 1. **closed → open** when a counted call completes and either the
//!    consecutive failures reach `trip.consecutive_failures`, or the window
//!    (`trip.window`, ten buckets of a tenth each) holds at least
//!    `trip.min_calls` calls of which at least `trip.failure_rate` failed.
//!    The open period is `open_for`.
//! 2. **open → half-open** when the first request arrives after the open
//!    period ended; that request becomes the first probe.
//! 3. **half-open → closed** when `half_open.successes_to_close` probes
//!    succeeded. The backoff resets: the next open lasts `open_for` again.
//! 4. **half-open → open** as soon as one probe fails. The open period
//!    doubles on each re-open, up to `max_open_for`.
//!
//! Every transition bumps the record's generation and clears the counters,
//! the window and the probe slots. A call admitted in one generation that
//! reports in another (a slow request that was in flight while the breaker
//! opened) is not counted. Neutral outcomes (4xx by default, client aborts,
//! local replies) change nothing but free a probe slot.
//!
//! Half-open admits at most `half_open.probes` requests at a time: each takes
//! a slot with a ticket and a deadline (`half_open.probe_timeout`). A probe's
//! report frees its slot; a slot past its deadline is reclaimed by the next
//! request that finds no free slot, so a probe that never reports cannot keep
//! the breaker stuck.

pub mod machine;
pub mod outcome;
pub mod record;

#[cfg(test)]
mod tests;

use crate::core::store::{update, Step, Store, StoreError, Updated};

pub use machine::{Admission, Reason, Ticket, Transition};
pub use outcome::{classify, FailureKind, Outcome, Response, StatusMatch};
pub use record::{Record, State};

/// The number of buckets of the failure-rate window.
pub const WINDOW_BUCKETS: usize = 10;

/// How many times a CAS update re-reads before giving up.
pub const MAX_RETRIES: u32 = 32;

/// A checked breaker policy. Durations are nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Which answers count as failures.
    pub failure: FailurePolicy,
    /// Trip when this many failures follow each other (`None`: never on a count).
    pub consecutive_failures: Option<u32>,
    /// Trip on a failure rate over a window (`None`: never on a rate).
    pub rate: Option<RateTrip>,
    /// First open period, more than 0.
    pub open_for: u64,
    /// The longest open period after doubling, at least `open_for`.
    pub max_open_for: u64,
    /// Probes in flight at once while half-open, 1 to 255.
    pub probes: u8,
    /// Probe successes that close the breaker, at least 1.
    pub successes_to_close: u32,
    /// A probe slot held longer than this is reclaimed.
    pub probe_timeout: u64,
}

/// `failure`: what counts as a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Upstream statuses that are failures (`5xx`, `503`, ...).
    pub statuses: Vec<StatusMatch>,
    /// Upstream resets, connect failures and timeouts are failures.
    pub resets: bool,
    /// An upstream answer slower than this (ns) is a failure.
    pub slow_call: Option<u64>,
}

/// `trip.failure_rate` with its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateTrip {
    /// The failure rate that trips, in millionths (500_000 = 0.5), 1 to 1_000_000.
    pub failure_rate_ppm: u32,
    /// The window length (ns), at least [`WINDOW_BUCKETS`].
    pub window: u64,
    /// Calls the window must hold before the rate counts, at least 1.
    pub min_calls: u32,
}

impl Policy {
    fn buckets(&self) -> usize {
        if self.rate.is_some() {
            WINDOW_BUCKETS
        } else {
            0
        }
    }

    fn fresh(&self) -> Record {
        Record::closed(usize::from(self.probes), self.buckets())
    }

    fn load(&self, bytes: Option<&[u8]>) -> Record {
        bytes
            .and_then(|b| Record::decode(b, usize::from(self.probes), self.buckets()))
            .unwrap_or_else(|| self.fresh())
    }
}

/// What an admission or a report did to the shared record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided<T> {
    /// The answer.
    pub value: T,
    /// The state after the update.
    pub state: State,
    /// The transition this call made, if any (only the caller whose CAS
    /// stored it sees it).
    pub transition: Option<Transition>,
}

/// Why a breaker could not decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerError {
    /// Other workers won every CAS attempt.
    Contention,
    /// The store failed.
    Store(StoreError),
}

impl std::fmt::Display for BreakerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BreakerError::Contention => write!(f, "lost {MAX_RETRIES} CAS retries in a row"),
            BreakerError::Store(err) => err.fmt(f),
        }
    }
}

/// The shared-data key of breaker `name`.
pub fn store_key(name: &str) -> String {
    format!("floodgate/v1/cb/{name}")
}

/// Decides whether a request may reach the upstream (one get, plus one CAS
/// set only when the record changes: a probe admitted or a transition).
pub fn admit<S: Store + ?Sized>(
    store: &S,
    key: &str,
    policy: &Policy,
    now: u64,
) -> Result<Decided<Admission>, BreakerError> {
    run(store, key, policy, |record| {
        machine::admit(record, policy, now)
    })
}

/// Records how an admitted request ended (one get, plus one CAS set when
/// the record changes).
pub fn report<S: Store + ?Sized>(
    store: &S,
    key: &str,
    policy: &Policy,
    ticket: Ticket,
    outcome: Outcome,
    now: u64,
) -> Result<Decided<()>, BreakerError> {
    run(store, key, policy, |record| {
        ((), machine::report(record, policy, ticket, outcome, now))
    })
}

/// Reads the state without changing anything.
pub fn peek<S: Store + ?Sized>(
    store: &S,
    key: &str,
    policy: &Policy,
) -> Result<Record, BreakerError> {
    let current = store.get(key).map_err(BreakerError::Store)?;
    Ok(policy.load(current.as_ref().map(|(bytes, _)| bytes.as_slice())))
}

fn run<S, T, F>(
    store: &S,
    key: &str,
    policy: &Policy,
    mut step: F,
) -> Result<Decided<T>, BreakerError>
where
    S: Store + ?Sized,
    F: FnMut(&mut Record) -> (T, Option<Transition>),
{
    let outcome = update(store, key, MAX_RETRIES, |bytes| {
        let before = policy.load(bytes);
        let mut after = before.clone();
        let (value, transition) = step(&mut after);
        let state = after.state;
        let decided = Decided {
            value,
            state,
            transition,
        };
        if after == before {
            Step::Keep(decided)
        } else {
            Step::Write(after.encode(), decided)
        }
    })
    .map_err(BreakerError::Store)?;
    match outcome {
        Updated::Done { value, .. } => Ok(value),
        Updated::Exhausted => Err(BreakerError::Contention),
    }
}

/// One configured breaker: a name, the requests it guards, its policy and
/// the answer it gives while open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaker {
    /// Unique; used in the shared-data key, metrics and logs.
    pub name: String,
    /// The requests this breaker guards.
    pub matcher: crate::core::matcher::Matcher,
    /// When it trips and how it recovers.
    pub policy: Policy,
    /// The answer while open; `None` for the default `503`.
    pub fallback: Option<Fallback>,
}

/// `fallback`: the answer an open breaker gives instead of its default `503`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// 200 to 599.
    pub status: u32,
    /// The body; none when empty.
    pub body: Option<Vec<u8>>,
    /// Lowercase names and their values.
    pub headers: Vec<(String, String)>,
}
