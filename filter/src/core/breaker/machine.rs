//! The state machine as pure steps on a [`Record`]: time and the policy in,
//! the answer and the transition out. The numbered transitions are described
//! once, in the [module documentation](super).

use std::fmt;

use super::outcome::{FailureKind, Outcome};
use super::record::{Bucket, Record, Slot, State};
use super::{Policy, WINDOW_BUCKETS};

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: go to the upstream and report the outcome with this ticket.
    Pass(Ticket),
    /// Half-open: go to the upstream as a probe holding a slot.
    Probe(Ticket),
    /// Open, or half-open with every slot taken: answer at once.
    Rejected {
        /// Until the next probe may be admitted (ns); 0 when half-open with
        /// every slot taken (a slot may free up any moment).
        retry_after: u64,
        /// The state that refused.
        state: State,
    },
}

/// What an admitted request reports back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// The record generation it was admitted in.
    pub generation: u32,
    /// Its probe slot ticket; 0 when not a probe.
    pub probe: u32,
}

/// A state change with its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// Why.
    pub reason: Reason,
}

/// Why a transition happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// (1) `n` consecutive failures.
    ConsecutiveFailures(u32),
    /// (1) `failures` of `calls` failed within the window.
    FailureRate {
        /// Failures in the window.
        failures: u32,
        /// Calls in the window.
        calls: u32,
    },
    /// (2) the open period of `open_for` ns ended.
    OpenPeriodOver {
        /// How long it was open (ns).
        open_for: u64,
    },
    /// (3) `n` probes succeeded.
    ProbesSucceeded(u32),
    /// (4) a probe failed; the next open period lasts `open_for` ns.
    ProbeFailed {
        /// What the failure was.
        kind: FailureKind,
        /// The new open period (ns).
        open_for: u64,
    },
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {} ", self.from.name(), self.to.name())?;
        match self.reason {
            Reason::ConsecutiveFailures(n) => write!(f, "after {n} consecutive failures"),
            Reason::FailureRate { failures, calls } => {
                write!(
                    f,
                    "after {failures} failures in {calls} calls within the window"
                )
            }
            Reason::OpenPeriodOver { open_for } => {
                write!(f, "after being open for {}ms", open_for / 1_000_000)
            }
            Reason::ProbesSucceeded(n) => write!(f, "after {n} successful probes"),
            Reason::ProbeFailed { kind, open_for } => write!(
                f,
                "after a failed probe ({kind}), open for {}ms",
                open_for / 1_000_000
            ),
        }
    }
}

/// Decides admission at time `now` (ns), taking a probe slot when half-open.
pub fn admit(record: &mut Record, policy: &Policy, now: u64) -> (Admission, Option<Transition>) {
    match record.state {
        State::Closed => (Admission::Pass(ticket(record, 0)), None),
        State::Open if now < record.open_until => (
            Admission::Rejected {
                retry_after: record.open_until - now,
                state: State::Open,
            },
            None,
        ),
        State::Open => {
            // (2) open -> half-open; this request is the first probe.
            let open_for = open_period(policy, record.opens);
            let transition = enter(record, State::HalfOpen, Reason::OpenPeriodOver { open_for });
            (take_slot(record, policy, now), Some(transition))
        }
        State::HalfOpen => (take_slot(record, policy, now), None),
    }
}

/// Records the outcome of a request admitted with `ticket`.
pub fn report(
    record: &mut Record,
    policy: &Policy,
    ticket: Ticket,
    outcome: Outcome,
    now: u64,
) -> Option<Transition> {
    if ticket.generation != record.generation {
        return None;
    }
    match record.state {
        State::Closed => report_closed(record, policy, outcome, now),
        State::Open => None,
        State::HalfOpen => report_probe(record, policy, ticket, outcome, now),
    }
}

fn report_closed(
    record: &mut Record,
    policy: &Policy,
    outcome: Outcome,
    now: u64,
) -> Option<Transition> {
    let failed = match outcome {
        Outcome::Neutral => return None,
        Outcome::Success => false,
        Outcome::Failure(_) => true,
    };
    record.consecutive = if failed {
        record.consecutive.saturating_add(1)
    } else {
        0
    };
    if let Some(threshold) = policy.consecutive_failures {
        if record.consecutive >= threshold {
            let reason = Reason::ConsecutiveFailures(record.consecutive);
            return Some(open(record, policy, now, reason));
        }
    }
    let rate = policy.rate?;
    let width = (rate.window / WINDOW_BUCKETS as u64).max(1);
    let number = now / width;
    let index = usize::try_from(number % WINDOW_BUCKETS as u64).unwrap_or(0);
    let bucket = record.buckets.get_mut(index)?;
    if bucket.number != number {
        *bucket = Bucket {
            number,
            ..Bucket::default()
        };
    }
    bucket.calls = bucket.calls.saturating_add(1);
    bucket.failures = bucket.failures.saturating_add(u32::from(failed));

    // The window is the current bucket and the nine before it.
    let oldest = number.saturating_sub(WINDOW_BUCKETS as u64 - 1);
    let (calls, failures) = record
        .buckets
        .iter()
        .filter(|b| b.number >= oldest && b.number <= number && b.calls > 0)
        .fold((0u32, 0u32), |(c, f), b| {
            (c.saturating_add(b.calls), f.saturating_add(b.failures))
        });
    let over =
        u64::from(failures) * 1_000_000 >= u64::from(rate.failure_rate_ppm) * u64::from(calls);
    if calls >= rate.min_calls && failures > 0 && over {
        return Some(open(
            record,
            policy,
            now,
            Reason::FailureRate { failures, calls },
        ));
    }
    None
}

fn report_probe(
    record: &mut Record,
    policy: &Policy,
    ticket: Ticket,
    outcome: Outcome,
    now: u64,
) -> Option<Transition> {
    // A slot that was reclaimed (or a non-probe ticket) no longer speaks for
    // the breaker.
    let slot = record
        .slots
        .iter_mut()
        .find(|slot| ticket.probe != 0 && slot.ticket == ticket.probe)?;
    *slot = Slot::default();
    match outcome {
        Outcome::Neutral => None,
        Outcome::Success => {
            record.successes = record.successes.saturating_add(1);
            if record.successes < policy.successes_to_close {
                return None;
            }
            // (3) half-open -> closed.
            record.opens = 0;
            let reason = Reason::ProbesSucceeded(record.successes);
            Some(enter(record, State::Closed, reason))
        }
        Outcome::Failure(kind) => {
            // (4) half-open -> open, for twice as long as last time.
            let open_for = open_period(policy, record.opens.saturating_add(1));
            Some(open(
                record,
                policy,
                now,
                Reason::ProbeFailed { kind, open_for },
            ))
        }
    }
}

/// The open period after `opens` opens since the last close:
/// `open_for * 2^(opens - 1)`, at most `max_open_for`.
pub fn open_period(policy: &Policy, opens: u8) -> u64 {
    let doublings = u32::from(opens.saturating_sub(1)).min(63);
    policy
        .open_for
        .saturating_mul(1u64 << doublings)
        .min(policy.max_open_for)
}

fn open(record: &mut Record, policy: &Policy, now: u64, reason: Reason) -> Transition {
    record.opens = record.opens.saturating_add(1);
    record.open_until = now.saturating_add(open_period(policy, record.opens));
    enter(record, State::Open, reason)
}

/// Moves to `to`: a new generation with every counter, bucket and slot cleared.
fn enter(record: &mut Record, to: State, reason: Reason) -> Transition {
    let from = record.state;
    record.state = to;
    record.generation = record.generation.wrapping_add(1);
    record.consecutive = 0;
    record.successes = 0;
    record
        .slots
        .iter_mut()
        .for_each(|slot| *slot = Slot::default());
    record
        .buckets
        .iter_mut()
        .for_each(|bucket| *bucket = Bucket::default());
    Transition { from, to, reason }
}

fn take_slot(record: &mut Record, policy: &Policy, now: u64) -> Admission {
    let free = record
        .slots
        .iter()
        .position(|slot| slot.ticket == 0 || slot.deadline <= now);
    let Some(index) = free else {
        return Admission::Rejected {
            retry_after: 0,
            state: State::HalfOpen,
        };
    };
    let probe = record.next_ticket.max(1);
    record.next_ticket = probe.checked_add(1).unwrap_or(1);
    if let Some(slot) = record.slots.get_mut(index) {
        *slot = Slot {
            ticket: probe,
            deadline: now.saturating_add(policy.probe_timeout),
        };
    }
    Admission::Probe(ticket(record, probe))
}

fn ticket(record: &Record, probe: u32) -> Ticket {
    Ticket {
        generation: record.generation,
        probe,
    }
}
