//! The state machine on a [`MemoryStore`] with stepped fake time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;

use super::*;
use crate::core::store::MemoryStore;

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;
const T0: u64 = 1_700_000_000 * S;
const KEY: &str = "floodgate/v1/cb/test";

fn policy() -> Policy {
    Policy {
        failure: FailurePolicy {
            statuses: vec![StatusMatch::Class(5)],
            resets: true,
            slow_call: None,
        },
        consecutive_failures: Some(3),
        rate: None,
        open_for: 2 * S,
        max_open_for: 300 * S,
        probes: 1,
        successes_to_close: 1,
        probe_timeout: 30 * S,
    }
}

const FAIL: Outcome = Outcome::Failure(FailureKind::Status(504));

/// A request: admitted or not, and if so reported with `outcome`.
fn call(store: &MemoryStore, policy: &Policy, now: u64, outcome: Outcome) -> Admission {
    let admission = admit(store, KEY, policy, now).unwrap().value;
    if let Admission::Pass(ticket) | Admission::Probe(ticket) = admission {
        report(store, KEY, policy, ticket, outcome, now).unwrap();
    }
    admission
}

fn state(store: &MemoryStore, policy: &Policy) -> State {
    peek(store, KEY, policy).unwrap().state
}

fn is_rejected(admission: Admission) -> bool {
    matches!(admission, Admission::Rejected { .. })
}

#[test]
fn a_fresh_breaker_is_closed_and_writes_nothing() {
    let store = MemoryStore::new();
    let decided = admit(&store, KEY, &policy(), T0).unwrap();
    assert!(matches!(decided.value, Admission::Pass(_)));
    assert_eq!(decided.state, State::Closed);
    assert!(store.is_empty());
}

#[test]
fn opens_after_consecutive_failures_and_rejects_until_the_period_ends() {
    let store = MemoryStore::new();
    let policy = policy();
    call(&store, &policy, T0, FAIL);
    call(&store, &policy, T0, FAIL);
    assert_eq!(state(&store, &policy), State::Closed);

    let ticket = match admit(&store, KEY, &policy, T0).unwrap().value {
        Admission::Pass(ticket) => ticket,
        other => panic!("{other:?}"),
    };
    let decided = report(&store, KEY, &policy, ticket, FAIL, T0).unwrap();
    let transition = decided.transition.unwrap();
    assert_eq!(
        transition.to_string(),
        "closed -> open after 3 consecutive failures"
    );

    let rejected = admit(&store, KEY, &policy, T0 + 500 * MS).unwrap().value;
    assert_eq!(
        rejected,
        Admission::Rejected {
            retry_after: 1500 * MS,
            state: State::Open
        }
    );
}

#[test]
fn four_xx_is_neutral_and_does_not_reset_the_count() {
    let store = MemoryStore::new();
    let mut policy = policy();
    policy.consecutive_failures = Some(5);
    for _ in 0..90 {
        assert!(!is_rejected(call(&store, &policy, T0, Outcome::Neutral)));
    }
    let sequence = [FAIL, Outcome::Neutral].repeat(5);
    for (i, outcome) in sequence.into_iter().take(9).enumerate() {
        call(&store, &policy, T0, outcome);
        let expected = if i == 8 { State::Open } else { State::Closed };
        assert_eq!(state(&store, &policy), expected, "after call {i}");
    }
}

#[test]
fn half_open_admits_one_probe_and_a_neutral_probe_frees_its_slot() {
    let store = MemoryStore::new();
    let policy = policy();
    for _ in 0..3 {
        call(&store, &policy, T0, FAIL);
    }
    let later = T0 + 2 * S;
    let first = admit(&store, KEY, &policy, later).unwrap();
    assert_eq!(first.state, State::HalfOpen);
    assert_eq!(
        first.transition.unwrap().to_string(),
        "open -> half-open after being open for 2000ms"
    );
    let Admission::Probe(probe) = first.value else {
        panic!("{first:?}");
    };
    assert_eq!(
        admit(&store, KEY, &policy, later).unwrap().value,
        Admission::Rejected {
            retry_after: 0,
            state: State::HalfOpen
        }
    );

    // A 404 says nothing: the slot is free again, the breaker stays half-open.
    report(&store, KEY, &policy, probe, Outcome::Neutral, later).unwrap();
    assert_eq!(state(&store, &policy), State::HalfOpen);
    let next = call(&store, &policy, later, Outcome::Success);
    assert!(matches!(next, Admission::Probe(_)));
    assert_eq!(state(&store, &policy), State::Closed);
}

#[test]
fn counters_reset_across_transitions() {
    let store = MemoryStore::new();
    let policy = policy();
    let mut now = T0;
    for _ in 0..3 {
        call(&store, &policy, now, FAIL);
    }
    assert_eq!(state(&store, &policy), State::Open);

    // Each failed probe re-opens at once, with one failure, not three.
    for reopen in 1..=3u32 {
        now += policy.open_for << (reopen - 1);
        let probe = call(&store, &policy, now, FAIL);
        assert!(matches!(probe, Admission::Probe(_)), "{probe:?}");
        assert_eq!(state(&store, &policy), State::Open);
    }

    now += 16 * S;
    call(&store, &policy, now, Outcome::Success);
    assert_eq!(state(&store, &policy), State::Closed);
    for outcome in [FAIL, FAIL, Outcome::Success, FAIL, FAIL] {
        assert!(matches!(
            call(&store, &policy, now, outcome),
            Admission::Pass(_)
        ));
    }
    assert_eq!(state(&store, &policy), State::Closed);
    call(&store, &policy, now, FAIL);
    assert_eq!(state(&store, &policy), State::Open);
}

#[test]
fn backoff_doubles_up_to_the_maximum_and_resets_once_closed() {
    let store = MemoryStore::new();
    let mut policy = policy();
    policy.open_for = 10 * S;
    policy.max_open_for = 35 * S;
    let mut now = T0;
    for _ in 0..3 {
        call(&store, &policy, now, FAIL);
    }
    let mut periods = vec![peek(&store, KEY, &policy).unwrap().open_until - now];
    for _ in 0..4 {
        now = peek(&store, KEY, &policy).unwrap().open_until;
        call(&store, &policy, now, FAIL);
        periods.push(peek(&store, KEY, &policy).unwrap().open_until - now);
    }
    assert_eq!(periods, [10 * S, 20 * S, 35 * S, 35 * S, 35 * S]);

    now = peek(&store, KEY, &policy).unwrap().open_until;
    call(&store, &policy, now, Outcome::Success);
    assert_eq!(state(&store, &policy), State::Closed);
    for _ in 0..3 {
        call(&store, &policy, now, FAIL);
    }
    assert_eq!(peek(&store, KEY, &policy).unwrap().open_until - now, 10 * S);
}

#[test]
fn a_probe_that_never_reports_is_reclaimed_after_the_timeout() {
    let store = MemoryStore::new();
    let policy = policy();
    for _ in 0..3 {
        call(&store, &policy, T0, FAIL);
    }
    let half_open = T0 + 2 * S;
    let Admission::Probe(lost) = admit(&store, KEY, &policy, half_open).unwrap().value else {
        panic!("no probe");
    };
    let just_before = half_open + policy.probe_timeout - 1;
    assert!(is_rejected(
        admit(&store, KEY, &policy, just_before).unwrap().value
    ));

    let reclaimed = half_open + policy.probe_timeout;
    let Admission::Probe(fresh) = admit(&store, KEY, &policy, reclaimed).unwrap().value else {
        panic!("slot not reclaimed");
    };
    // The lost probe finally reports a failure: its slot is gone, so it is ignored.
    let late = report(&store, KEY, &policy, lost, FAIL, reclaimed).unwrap();
    assert_eq!(late.transition, None);
    assert_eq!(late.state, State::HalfOpen);
    report(&store, KEY, &policy, fresh, Outcome::Success, reclaimed).unwrap();
    assert_eq!(state(&store, &policy), State::Closed);
}

#[test]
fn calls_in_flight_across_a_transition_do_not_count() {
    let store = MemoryStore::new();
    let policy = policy();
    let Admission::Pass(straggler) = admit(&store, KEY, &policy, T0).unwrap().value else {
        panic!("not closed");
    };
    for _ in 0..3 {
        call(&store, &policy, T0, FAIL);
    }
    let Admission::Probe(probe) = admit(&store, KEY, &policy, T0 + 2 * S).unwrap().value else {
        panic!("no probe");
    };
    // The straggler's failure arrives during half-open: not a probe, ignored.
    let ignored = report(&store, KEY, &policy, straggler, FAIL, T0 + 2 * S).unwrap();
    assert_eq!((ignored.state, ignored.transition), (State::HalfOpen, None));
    report(&store, KEY, &policy, probe, Outcome::Success, T0 + 2 * S).unwrap();
    assert_eq!(state(&store, &policy), State::Closed);
}

#[test]
fn several_probes_and_successes_to_close() {
    let store = MemoryStore::new();
    let mut policy = policy();
    policy.probes = 3;
    policy.successes_to_close = 3;
    for _ in 0..3 {
        call(&store, &policy, T0, FAIL);
    }
    let now = T0 + 2 * S;
    let probes: Vec<_> = (0..4)
        .map(|_| admit(&store, KEY, &policy, now).unwrap().value)
        .collect();
    assert_eq!(
        probes
            .iter()
            .filter(|a| matches!(a, Admission::Probe(_)))
            .count(),
        3
    );
    assert!(is_rejected(probes[3]));
    for (i, admission) in probes.iter().take(3).enumerate() {
        let Admission::Probe(ticket) = *admission else {
            panic!()
        };
        let decided = report(&store, KEY, &policy, ticket, Outcome::Success, now).unwrap();
        let expected = if i == 2 {
            State::Closed
        } else {
            State::HalfOpen
        };
        assert_eq!(decided.state, expected);
    }
    assert_eq!(
        state(&store, &policy),
        State::Closed,
        "three successes close it"
    );
}

fn rate_policy() -> Policy {
    let mut policy = policy();
    policy.consecutive_failures = None;
    policy.rate = Some(RateTrip {
        failure_rate_ppm: 500_000,
        window: 10 * S,
        min_calls: 20,
    });
    policy
}

#[test]
fn failure_rate_waits_for_min_calls() {
    let store = MemoryStore::new();
    let policy = rate_policy();
    for _ in 0..19 {
        call(&store, &policy, T0, FAIL);
    }
    assert_eq!(state(&store, &policy), State::Closed);
    let decided = {
        let Admission::Pass(ticket) = admit(&store, KEY, &policy, T0).unwrap().value else {
            panic!()
        };
        report(&store, KEY, &policy, ticket, Outcome::Success, T0).unwrap()
    };
    assert_eq!(
        decided.transition.unwrap().to_string(),
        "closed -> open after 19 failures in 20 calls within the window"
    );
}

#[test]
fn failure_rate_needs_half_failures() {
    let policy = rate_policy();
    for (failures, expected) in [(9, State::Closed), (10, State::Open)] {
        let store = MemoryStore::new();
        for i in 0..20 {
            let outcome = if i >= 20 - failures {
                FAIL
            } else {
                Outcome::Success
            };
            call(&store, &policy, T0, outcome);
        }
        assert_eq!(state(&store, &policy), expected, "{failures} of 20");
    }
}

#[test]
fn calls_older_than_the_window_stop_counting() {
    let store = MemoryStore::new();
    let policy = rate_policy();
    for _ in 0..15 {
        call(&store, &policy, T0, FAIL);
    }
    let later = T0 + 10 * S;
    for _ in 0..19 {
        call(&store, &policy, later, Outcome::Success);
    }
    for _ in 0..5 {
        call(&store, &policy, later, FAIL);
    }
    // 5 failures in 24 calls: the 15 old failures left the window.
    assert_eq!(state(&store, &policy), State::Closed);
}

#[test]
fn an_undecodable_record_starts_closed() {
    let store = MemoryStore::new();
    store.set(KEY, b"garbage", 0).unwrap();
    assert!(matches!(
        admit(&store, KEY, &policy(), T0).unwrap().value,
        Admission::Pass(_)
    ));
    for _ in 0..3 {
        call(&store, &policy(), T0, FAIL);
    }
    assert_eq!(state(&store, &policy()), State::Open);
}

/// Many threads on one store, like Envoy's workers: the breaker trips once,
/// half-opens once, admits exactly `probes` probes, and closes once.
#[test]
fn workers_agree_on_every_transition() {
    let store = Arc::new(MemoryStore::new());
    let mut policy = policy();
    policy.probes = 2;
    policy.successes_to_close = 2;
    policy.consecutive_failures = Some(50);
    let policy = Arc::new(policy);
    let opened = Arc::new(AtomicU32::new(0));

    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (store, policy, opened) = (store.clone(), policy.clone(), opened.clone());
            thread::spawn(move || {
                for _ in 0..20 {
                    let decided = admit(&*store, KEY, &policy, T0).unwrap();
                    if let Admission::Pass(ticket) = decided.value {
                        let r = report(&*store, KEY, &policy, ticket, FAIL, T0).unwrap();
                        if r.transition.is_some() {
                            opened.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
    assert_eq!(opened.load(Ordering::SeqCst), 1);
    assert_eq!(state(&store, &policy), State::Open);

    // Everyone arrives after the open period: one half-opens it, two probe.
    let now = T0 + 2 * S;
    let counts = Arc::new([AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)]);
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (store, policy, counts) = (store.clone(), policy.clone(), counts.clone());
            thread::spawn(move || {
                let mut held = Vec::new();
                for _ in 0..50 {
                    let decided = admit(&*store, KEY, &policy, now).unwrap();
                    if decided.transition.is_some() {
                        counts[0].fetch_add(1, Ordering::SeqCst);
                    }
                    if let Admission::Probe(ticket) = decided.value {
                        counts[1].fetch_add(1, Ordering::SeqCst);
                        held.push(ticket);
                    }
                }
                held
            })
        })
        .collect();
    let held: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert_eq!(
        counts[0].load(Ordering::SeqCst),
        1,
        "one half-open transition"
    );
    assert_eq!(counts[1].load(Ordering::SeqCst), 2, "exactly two probes");

    let closers: Vec<_> = held
        .into_iter()
        .map(|ticket| {
            let (store, policy, counts) = (store.clone(), policy.clone(), counts.clone());
            thread::spawn(move || {
                let r = report(&*store, KEY, &policy, ticket, Outcome::Success, now).unwrap();
                if r.transition.is_some() {
                    counts[2].fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    closers.into_iter().for_each(|c| c.join().unwrap());
    assert_eq!(counts[2].load(Ordering::SeqCst), 1, "one close");
    assert_eq!(state(&store, &policy), State::Closed);
}

/// Simulated workers with interleaved time steps never admit more probes
/// at once than slots, and the breaker always ends up closed once healthy.
#[test]
fn probes_in_flight_never_exceed_the_slots() {
    let store = MemoryStore::new();
    let mut policy = policy();
    policy.probes = 3;
    policy.successes_to_close = 5;
    policy.probe_timeout = 5 * S;
    for _ in 0..3 {
        call(&store, &policy, T0, FAIL);
    }
    let mut in_flight: Vec<(Ticket, u64)> = Vec::new();
    let mut now = T0 + 2 * S;
    let mut seed = 12345u64;
    for _ in 0..2_000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        now += (seed >> 33) % (200 * MS);
        in_flight.retain(|(_, deadline)| *deadline > now);
        match (seed >> 20) % 3 {
            0 => {
                if let Admission::Probe(t) = admit(&store, KEY, &policy, now).unwrap().value {
                    in_flight.push((t, now + policy.probe_timeout));
                }
                let live = in_flight.iter().filter(|(t, _)| {
                    peek(&store, KEY, &policy)
                        .unwrap()
                        .slots
                        .iter()
                        .any(|s| s.ticket == t.probe)
                });
                assert!(live.count() <= 3);
            }
            1 if !in_flight.is_empty() => {
                let (ticket, _) = in_flight.remove(0);
                // Probes never report success here, only silence or neutral.
                report(&store, KEY, &policy, ticket, Outcome::Neutral, now).unwrap();
            }
            _ => {}
        }
        assert_ne!(state(&store, &policy), State::Closed);
    }
    now += policy.probe_timeout;
    for _ in 0..5 {
        call(&store, &policy, now, Outcome::Success);
    }
    assert_eq!(state(&store, &policy), State::Closed);
}

#[test]
fn successes_to_close_may_exceed_probes() {
    let store = MemoryStore::new();
    let mut policy = policy();
    policy.successes_to_close = 3;
    for _ in 0..3 {
        call(&store, &policy, T0, FAIL);
    }
    let now = T0 + 2 * S;
    for i in 0..3 {
        assert!(matches!(
            call(&store, &policy, now, Outcome::Success),
            Admission::Probe(_)
        ));
        let expected = if i == 2 {
            State::Closed
        } else {
            State::HalfOpen
        };
        assert_eq!(state(&store, &policy), expected);
    }
}

/// Eight threads send random traffic over a shared stepped clock. Whatever
/// the interleaving, the transitions they make tell one consistent story:
/// every half-open follows an open, every close or re-open follows a
/// half-open, and the final state is the one the counts imply.
#[test]
fn random_traffic_from_many_threads_keeps_transitions_consistent() {
    use std::sync::atomic::AtomicU64;

    let store = Arc::new(MemoryStore::new());
    let mut policy = policy();
    policy.probes = 2;
    policy.successes_to_close = 2;
    policy.open_for = 50 * MS;
    policy.max_open_for = 400 * MS;
    policy.probe_timeout = 300 * MS;
    policy.rate = Some(RateTrip {
        failure_rate_ppm: 600_000,
        window: S,
        min_calls: 10,
    });
    let policy = Arc::new(policy);
    let clock = Arc::new(AtomicU64::new(T0));
    // to open, to half-open, to closed, half-open to open
    let counts = Arc::new([
        AtomicU32::new(0),
        AtomicU32::new(0),
        AtomicU32::new(0),
        AtomicU32::new(0),
    ]);
    let record = |counts: &[AtomicU32; 4], transition: Option<Transition>| {
        if let Some(t) = transition {
            let index = match (t.from, t.to) {
                (State::Closed, State::Open) => 0,
                (State::Open, State::HalfOpen) => 1,
                (State::HalfOpen, State::Closed) => 2,
                (State::HalfOpen, State::Open) => 3,
                other => panic!("impossible transition {other:?}"),
            };
            counts[index].fetch_add(1, Ordering::SeqCst);
        }
    };

    let workers: Vec<_> = (0..8u64)
        .map(|worker| {
            let (store, policy, clock, counts) =
                (store.clone(), policy.clone(), clock.clone(), counts.clone());
            thread::spawn(move || {
                let mut seed = worker.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                let mut next = move || {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed
                };
                let mut pending = Vec::new();
                for _ in 0..3_000 {
                    let now = clock.fetch_add(next() % (3 * MS), Ordering::SeqCst);
                    let decided = admit(&*store, KEY, &policy, now).unwrap();
                    record(&counts, decided.transition);
                    if let Admission::Pass(t) | Admission::Probe(t) = decided.value {
                        pending.push(t);
                    }
                    // Finish a random pending request, or forget it (a probe
                    // that never reports).
                    if !pending.is_empty() && next() % 3 != 0 {
                        let ticket = pending.swap_remove((next() as usize) % pending.len());
                        let outcome = match next() % 10 {
                            0..=4 => FAIL,
                            5 => Outcome::Neutral,
                            _ => Outcome::Success,
                        };
                        if next() % 20 != 0 {
                            let r = report(&*store, KEY, &policy, ticket, outcome, now).unwrap();
                            record(&counts, r.transition);
                        }
                    }
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());

    let [opened, half_opened, closed, reopened] =
        [0, 1, 2, 3].map(|i| counts[i].load(Ordering::SeqCst));
    let opens = opened + reopened;
    assert!(opened > 0 && half_opened > 0 && closed > 0 && reopened > 0);
    assert!(
        opens - half_opened <= 1,
        "{opens} opens, {half_opened} half-opens"
    );
    let left_half_open = closed + reopened;
    assert!(half_opened - left_half_open <= 1);
    assert_eq!(
        opened,
        closed + u32::from(opened > closed),
        "closed <-> open alternate"
    );
    let expected = if opens > half_opened {
        State::Open
    } else if half_opened > left_half_open {
        State::HalfOpen
    } else {
        State::Closed
    };
    assert_eq!(state(&store, &policy), expected);
}
