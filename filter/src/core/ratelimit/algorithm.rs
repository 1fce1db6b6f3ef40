//! The three algorithms as pure functions of a stored state and the time.
//!
//! Every function is exact integer arithmetic: no floats, no rounding that
//! could drift, so a test with stepped time can assert exact figures.

/// Nanoseconds in a second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// How a rule counts requests: `limit` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// A bucket of `burst` tokens that refills `limit` tokens per `period`,
    /// kept as GCRA's theoretical arrival time with the fraction carried.
    TokenBucket {
        /// The most tokens the bucket holds; at least 1.
        burst: u64,
    },
    /// `limit` per window; windows start at multiples of `period` since the
    /// Unix epoch, so every worker and every Envoy agrees on them.
    FixedWindow,
    /// The weighted two-window estimate: the previous window's count, scaled
    /// by how much of it still overlaps the last `period` and rounded to the
    /// nearest whole request, plus the current window's count.
    SlidingWindow,
}

/// A rule's numbers, checked by the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Requests (cost units) per period; at least 1.
    pub limit: u64,
    /// The period in nanoseconds; at least one millisecond.
    pub period: u64,
}

/// The stored state of one key. All-zero is the state of a key never seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State {
    /// Token bucket: the whole nanoseconds of the theoretical arrival time
    /// (the moment the bucket is full again). Windows: the start of the
    /// window `current` counts, in nanoseconds since the epoch.
    pub time: u64,
    /// Token bucket: the fraction of a nanosecond past `time`, in units of
    /// `1 / limit` ns (always below `limit`). Windows: the count in the
    /// window that starts at `time`.
    pub current: u64,
    /// Sliding window: the count in the window before `time`. Otherwise 0.
    pub previous: u64,
}

/// What one request gets from one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Admitted; `state` must be written back.
    Allowed {
        /// The state after spending.
        state: State,
        /// Requests of cost 1 still admissible right now.
        remaining: u64,
        /// Nanoseconds until the quota is whole again.
        reset: u64,
    },
    /// Refused; nothing changes.
    Limited {
        /// Nanoseconds until a request of the same cost would be admitted.
        retry_after: u64,
        /// Nanoseconds until the quota is whole again.
        reset: u64,
    },
}

impl Policy {
    /// The decision for a request of `cost` at `now`, from the stored `state`.
    pub fn decide(&self, state: State, cost: u64, now: u64) -> Decision {
        match self.algorithm {
            Algorithm::TokenBucket { burst } => self.bucket_decide(burst, state, cost, now),
            Algorithm::FixedWindow => self.fixed_decide(state, cost, now),
            Algorithm::SlidingWindow => self.sliding_decide(state, cost, now),
        }
    }

    /// `state` with `cost` given back, as if the request admitted at
    /// `spent_at` had never spent it. A window that has ended keeps its count.
    pub fn refund(&self, state: State, cost: u64, spent_at: u64, now: u64) -> State {
        match self.algorithm {
            Algorithm::TokenBucket { burst } => {
                let debt = self
                    .debt(burst, state, now)
                    .saturating_sub(self.units(cost));
                self.bucket_state(debt, now)
            }
            Algorithm::FixedWindow | Algorithm::SlidingWindow => {
                let (start, mut previous, mut current) = self.windows(state, now);
                if spent_at >= start {
                    current = current.saturating_sub(cost);
                } else if spent_at >= start.saturating_sub(self.period) {
                    previous = previous.saturating_sub(cost);
                }
                State {
                    time: start,
                    current,
                    previous,
                }
            }
        }
    }

    /// How much of the quota `state` has used at `now`, in a unit comparable
    /// between keys of this policy. 0 means whole again: the state is then
    /// the same as a key never seen, and its slot may be reused.
    pub fn used(&self, state: State, now: u64) -> u128 {
        match self.algorithm {
            Algorithm::TokenBucket { burst } => self.debt(burst, state, now),
            Algorithm::FixedWindow | Algorithm::SlidingWindow => {
                let (start, previous, current) = self.windows(state, now);
                self.weighted(previous, current, now.saturating_sub(start))
            }
        }
    }

    // --- token bucket (GCRA) -------------------------------------------
    //
    // One token is `period / limit` ns, a fraction in general. Times are
    // therefore measured in units of `1 / limit` ns, in which a token is
    // exactly `period` units and the bucket refills `limit` units per ns.
    // The debt is how far the theoretical arrival time lies ahead of `now`;
    // the bucket holds `burst - debt / period` tokens.

    fn units(&self, tokens: u64) -> u128 {
        u128::from(tokens) * u128::from(self.period)
    }

    fn debt(&self, burst: u64, state: State, now: u64) -> u128 {
        let ahead = match state.time.checked_sub(now) {
            Some(whole) => u128::from(whole) * u128::from(self.limit) + u128::from(state.current),
            None => 0,
        };
        // A state written under other numbers (a configuration reload)
        // never owes more than an empty bucket.
        ahead.min(self.units(burst))
    }

    fn bucket_state(&self, debt: u128, now: u64) -> State {
        let limit = u128::from(self.limit);
        let whole = u64::try_from(debt / limit).unwrap_or(u64::MAX);
        State {
            time: now.saturating_add(whole),
            current: u64::try_from(debt % limit).unwrap_or(0),
            previous: 0,
        }
    }

    fn bucket_decide(&self, burst: u64, state: State, cost: u64, now: u64) -> Decision {
        let capacity = self.units(burst);
        let debt = self.debt(burst, state, now);
        let after = debt + self.units(cost);
        let limit = u128::from(self.limit);
        if after <= capacity {
            Decision::Allowed {
                state: self.bucket_state(after, now),
                remaining: to_u64((capacity - after) / u128::from(self.period)),
                reset: to_u64(after.div_ceil(limit)),
            }
        } else {
            Decision::Limited {
                retry_after: to_u64((after - capacity).div_ceil(limit)),
                reset: to_u64(debt.div_ceil(limit)),
            }
        }
    }

    // --- windows ---------------------------------------------------------

    /// The current window's start and the (previous, current) counts at
    /// `now`, whatever window `state` was written in.
    ///
    /// Fixed windows start at multiples of `period` since the epoch. Sliding
    /// windows start at the key's first request after it was idle, then
    /// follow each other every `period`: a key's traffic always begins at
    /// the start of a window, where the estimate is most accurate.
    fn windows(&self, state: State, now: u64) -> (u64, u64, u64) {
        if self.algorithm == Algorithm::FixedWindow {
            let start = now - now % self.period;
            // A worker whose clock read is a hair behind another's may see a
            // window that already began: it counts in that one.
            let written_in_window = state.time == start || state.time == start + self.period;
            return if written_in_window {
                (state.time, 0, state.current)
            } else {
                (start, 0, 0)
            };
        }
        let elapsed = now.saturating_sub(state.time);
        let (start, previous, current) = match elapsed / self.period {
            0 => (state.time, state.previous, state.current),
            1 => (state.time + self.period, state.current, 0),
            _ => (now, 0, 0),
        };
        if previous == 0 && current == 0 {
            (now, 0, 0)
        } else {
            (start, previous, current)
        }
    }

    /// The sliding estimate times `period`: the previous count weighted by
    /// the part of it still inside the last `period`, plus the current count.
    fn weighted(&self, previous: u64, current: u64, elapsed: u64) -> u128 {
        let period = u128::from(self.period);
        let left = period.saturating_sub(u128::from(elapsed));
        u128::from(previous) * left + u128::from(current) * period
    }

    fn fixed_decide(&self, state: State, cost: u64, now: u64) -> Decision {
        let (start, _, current) = self.windows(state, now);
        let to_end = (start + self.period).saturating_sub(now);
        match current
            .checked_add(cost)
            .filter(|&after| after <= self.limit)
        {
            Some(after) => Decision::Allowed {
                state: State {
                    time: start,
                    current: after,
                    previous: 0,
                },
                remaining: self.limit - after,
                reset: to_end,
            },
            None => Decision::Limited {
                retry_after: to_end.max(1),
                reset: to_end,
            },
        }
    }

    /// The previous window's count still inside the last `period`, rounded
    /// to the nearest whole request (halves up).
    fn tail(&self, previous: u64, elapsed: u64) -> u64 {
        let period = u128::from(self.period);
        let doubled = 2 * u128::from(previous) * period.saturating_sub(u128::from(elapsed));
        to_u64((doubled + period) / (2 * period))
    }

    fn sliding_decide(&self, state: State, cost: u64, now: u64) -> Decision {
        let (start, previous, current) = self.windows(state, now);
        let elapsed = now.saturating_sub(start);
        let to_end = (start + self.period).saturating_sub(now);
        let used = self.tail(previous, elapsed).saturating_add(current);
        if let Some(after) = used.checked_add(cost).filter(|&u| u <= self.limit) {
            // Whole again once the current window has slid out, too.
            return Decision::Allowed {
                state: State {
                    time: start,
                    current: current + cost,
                    previous,
                },
                remaining: self.limit - after,
                reset: to_end + self.period,
            };
        }
        let reset = if current > 0 {
            to_end + self.period
        } else {
            to_end
        };
        Decision::Limited {
            retry_after: self.sliding_wait(previous, current, cost, elapsed),
            reset,
        }
    }

    /// Nanoseconds from `elapsed` into the current window until
    /// `round(previous * (period - e) / period) + current + cost <= limit`.
    fn sliding_wait(&self, previous: u64, current: u64, cost: u64, elapsed: u64) -> u64 {
        let period = u128::from(self.period);
        // How far into a window with these counts the request first fits.
        let fits_at = |previous: u64, current: u64| -> Option<u128> {
            let room = self.limit.checked_sub(current.checked_add(cost)?)?;
            if previous == 0 {
                return Some(0);
            }
            // round(w) <= room  <=>  2 * previous * (period - e) < (2 room + 1) period
            let bound = (2 * u128::from(room) + 1) * period;
            let most_left = bound.div_ceil(2 * u128::from(previous)) - 1;
            Some(period.saturating_sub(most_left))
        };
        let wait = match fits_at(previous, current) {
            Some(at) => at.saturating_sub(u128::from(elapsed)),
            // Not in this window: in the next, the current count becomes
            // the previous one.
            None => {
                let to_end = period.saturating_sub(u128::from(elapsed));
                to_end + fits_at(current, 0).unwrap_or(period)
            }
        };
        to_u64(wait.max(1))
    }
}

fn to_u64(value: u128) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// Whole seconds for a `retry-after` or `t=` value: rounded up, at least 1.
pub fn whole_seconds(nanos: u64) -> u64 {
    nanos.div_ceil(NANOS_PER_SEC).max(1)
}
