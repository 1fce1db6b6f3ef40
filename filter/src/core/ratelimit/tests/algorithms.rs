//! Each algorithm alone, with stepped time: exact figures.

use super::*;
use crate::core::ratelimit::algorithm::{Decision, State};

#[test]
fn token_bucket_admits_the_burst_then_the_rate() {
    // 1 token per 2 s, burst 10; a client every 125 ms for 20 s.
    // 160 requests over 19.875 s: 10 tokens, then 9 refills.
    let mut key = Key::new(bucket(1, 2 * SEC, 10));
    assert_eq!(key.run(T0, 125 * MS, 160), 19);
    // After 60 s idle the bucket is full again, and no fuller.
    let later = T0 + 20 * SEC + 60 * SEC;
    assert_eq!(key.run(later, 0, 30), 10);
}

#[test]
fn token_bucket_loses_no_fractions() {
    // Burst 1, 3 per second: a token every 333.33... ms.
    let mut slow = Key::new(bucket(3, SEC, 1));
    assert_eq!(slow.run(T0, 400 * MS, 150), 150);
    // Every 50 ms the request that finds the token is the first one at or
    // after each 333.3 ms, i.e. every 350 ms: 86 in 30 s.
    let mut fast = Key::new(bucket(3, SEC, 1));
    assert_eq!(fast.run(T0, 50 * MS, 600), 86);
    // With room for two, nothing is lost to the grid: on a 1 ms grid the
    // thirds add up exactly, 2 + 3 per second for 29.999 s.
    let mut fine = Key::new(bucket(3, SEC, 2));
    assert_eq!(fine.run(T0, MS, 30_000), 2 + 89);
}

#[test]
fn token_bucket_reports_retry_after_and_reset() {
    let mut key = Key::new(bucket(1, 10 * SEC, 2));
    assert!(matches!(
        key.hit(T0),
        Decision::Allowed { remaining: 1, reset, .. } if reset == 10 * SEC
    ));
    assert!(key.admits(T0));
    assert_eq!(retry_after(key.hit(T0 + 5 * MS)), 10 * SEC - 5 * MS);
    assert_eq!(retry_after(key.hit(T0 + 8_500 * MS)), 1_500 * MS);
    assert!(!key.admits(T0 + 10 * SEC - 1));
    assert!(key.admits(T0 + 10 * SEC));
}

#[test]
fn token_bucket_clamps_debt_written_under_other_numbers() {
    // A state far in the future (a longer period before a reload) owes at
    // most one empty bucket under the new numbers.
    let policy = bucket(10, SEC, 10);
    let state = State {
        time: T0 + 3_600 * SEC,
        current: 0,
        previous: 0,
    };
    assert_eq!(policy.used(state, T0), 10 * u128::from(SEC));
    assert_eq!(retry_after(policy.decide(state, 1, T0)), 100 * MS);
}

#[test]
fn token_bucket_refund_restores_the_token() {
    let policy = bucket(1, 10 * SEC, 2);
    let Decision::Allowed { state, .. } = policy.decide(State::default(), 2, T0) else {
        panic!()
    };
    let refunded = policy.refund(state, 1, T0, T0 + MS);
    assert!(matches!(
        policy.decide(refunded, 1, T0 + MS),
        Decision::Allowed { remaining: 0, .. }
    ));
    assert_eq!(policy.used(policy.refund(state, 2, T0, T0), T0), 0);
}

#[test]
fn fixed_window_counts_per_clock_aligned_window() {
    let mut key = Key::new(fixed(2, 60 * SEC));
    let start = T0 + 45 * SEC; // 15 s before a window ends
    assert!(key.admits(start));
    assert!(
        matches!(key.hit(start), Decision::Allowed { remaining: 0, reset, .. } if reset == 15 * SEC)
    );
    assert_eq!(retry_after(key.hit(start + 100 * MS)), 14_900 * MS);
    assert!(!key.admits(T0 + 60 * SEC - 1));
    assert_eq!(key.run(T0 + 60 * SEC, 0, 5), 2);
    assert_eq!(key.run(T0 + 121 * SEC, 0, 5), 2);
}

#[test]
fn fixed_window_ignores_counts_from_windows_of_another_period() {
    // Written under a 1 s period (a reload changed it to 60 s): not a
    // window of this rule, so it starts afresh.
    let state = State {
        time: T0 + 7 * SEC,
        current: 2,
        previous: 0,
    };
    assert_eq!(fixed(2, 60 * SEC).used(state, T0 + 8 * SEC), 0);
    // A worker whose clock read lags a hair behind counts in the window
    // another worker already opened.
    let next = State {
        time: T0 + 60 * SEC,
        current: 2,
        previous: 0,
    };
    let used = fixed(2, 60 * SEC).used(next, T0 + 60 * SEC - 1);
    assert_eq!(used, u128::from(2 * 60 * SEC));
}

#[test]
fn fixed_window_refund_only_touches_its_window() {
    let policy = fixed(2, SEC);
    let state = State {
        time: T0,
        current: 2,
        previous: 0,
    };
    assert_eq!(policy.refund(state, 1, T0, T0).current, 1);
    // Spent in a window that has ended: nothing to give back.
    let next = policy.refund(state, 1, T0, T0 + SEC);
    assert_eq!(policy.used(next, T0 + SEC), 0);
}

#[test]
fn sliding_window_keeps_to_the_limit_over_any_period() {
    // 5 per 10 s, a request every 500 ms for 40 s, on a few clock phases
    // and with some jitter: 20 pass, at most 6 in any 10 s, never a wait
    // longer than the period.
    for (offset, jitter) in [
        (0, 0),
        (1_300 * MS, 7 * MS),
        (5 * SEC, 29 * MS),
        (9_800 * MS, 13 * MS),
    ] {
        let mut key = Key::new(sliding(5, 10 * SEC));
        let times: Vec<u64> = (0..80)
            .map(|i| T0 + offset + i * 500 * MS + (i * jitter) % (30 * MS))
            .collect();
        let admitted: Vec<u64> = times.iter().copied().filter(|&t| key.admits(t)).collect();
        assert_eq!(admitted.len(), 20, "offset {offset}");
        for &from in &times {
            let in_period = admitted
                .iter()
                .filter(|&&t| t >= from && t < from + 10 * SEC)
                .count();
            assert!(in_period <= 6, "offset {offset}: {in_period} from {from}");
        }
        for pair in admitted.windows(2) {
            assert!(pair[1] - pair[0] < 10 * SEC, "locked out: {pair:?}");
        }
    }
}

#[test]
fn sliding_window_remembers_the_previous_window() {
    // Five, then five 400 ms later: the second five are refused.
    let mut key = Key::new(sliding(5, 10 * SEC));
    assert_eq!(key.run(T0 + 9_800 * MS, 0, 5), 5);
    assert_eq!(key.run(T0 + 10_200 * MS, 0, 5), 0);
    // The same across a window boundary: one request opens the window,
    // four come at 9.8 s, five at 10.2 s.
    let mut key = Key::new(sliding(5, 10 * SEC));
    assert!(key.admits(T0));
    assert_eq!(key.run(T0 + 9_800 * MS, 0, 4), 4);
    assert_eq!(key.run(T0 + 10_200 * MS, 0, 5), 0);
    // Two windows idle: whole again.
    assert_eq!(key.run(T0 + 30 * SEC, 0, 9), 5);
}

#[test]
fn sliding_window_retry_after_is_when_the_estimate_fits() {
    let policy = sliding(5, 10 * SEC);
    // Five in the window before, 2 s into the current one: round(5 * 8/10)
    // = 4 still counts, room for 1.
    let state = State {
        time: T0,
        current: 5,
        previous: 0,
    };
    let now = T0 + 12 * SEC;
    assert!(matches!(
        policy.decide(state, 1, now),
        Decision::Allowed { remaining: 0, .. }
    ));
    // Two fit once round(5 * (10 - e)/10) <= 3, that is e > 3 s.
    assert_eq!(retry_after(policy.decide(state, 2, now)), SEC + 1);
    // A full current window: wait for the next one, then until
    // round(5 * (10 - e)/10) <= 4, e > 1 s.
    let full = State {
        time: T0 + 10 * SEC,
        current: 5,
        previous: 0,
    };
    assert_eq!(retry_after(policy.decide(full, 1, now)), 9 * SEC + 1);
    let Decision::Limited { retry_after, .. } = policy.decide(full, 1, now) else {
        panic!()
    };
    assert!(
        policy.decide(full, 1, now + retry_after - 1) != policy.decide(full, 1, now + retry_after)
    );
    assert!(matches!(
        policy.decide(full, 1, now + retry_after),
        Decision::Allowed { .. }
    ));
}
