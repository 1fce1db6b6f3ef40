//! Rate limits: which rules a request meets, and whether they admit it.
//!
//! Every enforcing rule that matches applies, in configuration order, and
//! spends as it goes; when one refuses, the spends already made are
//! refunded, so a refused request costs nothing in the other rules. A
//! refund is a compare-and-swap like any write. Between a spend and its
//! refund (microseconds) another request on the same key sees one token
//! less than it will be: the race can only make a concurrent request
//! stricter, never let more through.
//!
//! Shadow rules are applied after the enforcing ones, to requests that
//! passed them: they spend and count, but never refuse.

pub mod algorithm;
pub mod headers;
pub mod record;
pub mod table;

#[cfg(test)]
mod tests;

use crate::core::hash::KeyHasher;
use crate::core::key::{self, KeyPart};
use crate::core::matcher::Matcher;
use crate::core::request::RequestFacts;
use crate::core::store::Store;

pub use algorithm::{Algorithm, Policy};
use table::{Acquired, Spend, Table};

/// Whether a rule refuses or only counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Refuse what the rule does not admit.
    #[default]
    Enforce,
    /// Count what would have been refused; refuse nothing.
    Shadow,
}

/// One checked `rate_limits` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Unique name: in stats, shared-data keys, headers and the 429 body.
    pub name: String,
    /// Which requests the rule applies to.
    pub matcher: Matcher,
    /// What picks the bucket; empty is one bucket for the rule.
    pub key: Vec<KeyPart>,
    /// The algorithm and its numbers.
    pub policy: Policy,
    /// What one request spends; at least 1, at most the capacity.
    pub cost: u64,
    /// Enforce or shadow.
    pub mode: Mode,
    /// The number of slots (tracked keys) of the rule's table.
    pub max_keys: u32,
}

impl Rule {
    fn table(&self) -> Table<'_> {
        Table {
            rule: &self.name,
            slots: self.max_keys,
            policy: self.policy,
        }
    }
}

/// What happened in one rule for one request, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The rule admitted the request and the request went on.
    Allowed,
    /// The rule refused the request.
    Limited,
    /// A shadow rule would have refused the request.
    ShadowLimited,
    /// A live key lost its slot to make room for this one.
    Evicted,
    /// Every compare-and-swap attempt lost; the rule let the request
    /// through without spending (fail open).
    Exhausted,
    /// Shared data failed; the rule let the request through (fail open).
    StoreFailed,
}

/// The quota a rule reports in the RateLimit header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Index of the rule in the configuration.
    pub rule: usize,
    /// Requests of cost 1 still admissible.
    pub remaining: u64,
    /// Nanoseconds until the quota is whole again.
    pub reset: u64,
}

/// A refusal: the rule that refused and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The refusing rule's quota (`remaining` is 0).
    pub quota: Quota,
    /// Nanoseconds until a retry would be admitted.
    pub retry_after: u64,
}

/// The answer for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Set when an enforcing rule refused the request.
    pub refused: Option<Refusal>,
    /// For an admitted request: the enforcing rule with the fewest remaining.
    pub tightest: Option<Quota>,
    /// What happened, per rule index.
    pub events: Vec<(usize, Event)>,
}

/// All configured rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimits {
    /// The rules, in configuration order.
    pub rules: Vec<Rule>,
}

impl RateLimits {
    /// Applies every matching rule to `request` at `now`.
    pub fn admit(
        &self,
        store: &(impl Store + ?Sized),
        hasher: &KeyHasher,
        request: &RequestFacts,
        now: u64,
    ) -> Verdict {
        let mut verdict = Verdict::default();
        let mut spends: Vec<(usize, Spend)> = Vec::new();
        let enforcing = self.matching(request, Mode::Enforce);
        for (index, rule) in enforcing {
            let fingerprint = hasher.fingerprint(&rule.name, &key::build(&rule.key, request));
            match rule.table().acquire(store, fingerprint, rule.cost, now) {
                Ok(Acquired::Allowed {
                    spend,
                    remaining,
                    reset,
                    evicted,
                }) => {
                    if evicted {
                        verdict.events.push((index, Event::Evicted));
                    }
                    spends.push((index, spend));
                    let quota = Quota {
                        rule: index,
                        remaining,
                        reset,
                    };
                    if verdict.tightest.map_or(true, |t| remaining < t.remaining) {
                        verdict.tightest = Some(quota);
                    }
                }
                Ok(Acquired::Limited { retry_after, reset }) => {
                    verdict.events.push((index, Event::Limited));
                    verdict.refused = Some(Refusal {
                        quota: Quota {
                            rule: index,
                            remaining: 0,
                            reset,
                        },
                        retry_after,
                    });
                    verdict.tightest = None;
                    self.refund(store, &spends, now, &mut verdict.events);
                    return verdict;
                }
                Ok(Acquired::Exhausted) => verdict.events.push((index, Event::Exhausted)),
                Err(_) => verdict.events.push((index, Event::StoreFailed)),
            }
        }
        for (index, _) in &spends {
            verdict.events.push((*index, Event::Allowed));
        }

        for (index, rule) in self.matching(request, Mode::Shadow) {
            let fingerprint = hasher.fingerprint(&rule.name, &key::build(&rule.key, request));
            let event = match rule.table().acquire(store, fingerprint, rule.cost, now) {
                Ok(Acquired::Allowed { evicted, .. }) => {
                    if evicted {
                        verdict.events.push((index, Event::Evicted));
                    }
                    Event::Allowed
                }
                Ok(Acquired::Limited { .. }) => Event::ShadowLimited,
                Ok(Acquired::Exhausted) => Event::Exhausted,
                Err(_) => Event::StoreFailed,
            };
            verdict.events.push((index, event));
        }
        verdict
    }

    fn matching<'a>(
        &'a self,
        request: &'a RequestFacts,
        mode: Mode,
    ) -> impl Iterator<Item = (usize, &'a Rule)> + 'a {
        self.rules
            .iter()
            .enumerate()
            .filter(move |(_, rule)| rule.mode == mode && rule.matcher.matches(request))
    }

    fn refund(
        &self,
        store: &(impl Store + ?Sized),
        spends: &[(usize, Spend)],
        now: u64,
        events: &mut Vec<(usize, Event)>,
    ) {
        for &(index, spend) in spends {
            let Some(rule) = self.rules.get(index) else {
                continue;
            };
            match rule.table().refund(store, spend, now) {
                Ok(true) => {}
                Ok(false) => events.push((index, Event::Exhausted)),
                Err(_) => events.push((index, Event::StoreFailed)),
            }
        }
    }
}
