//! Rate limits in Envoy: metrics, logs, the 429 and the RateLimit fields.

use std::cell::Cell;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use super::metrics::Counter;
use super::reply;
use crate::core::hash::KeyHasher;
use crate::core::ratelimit::algorithm::{whole_seconds, Algorithm};
use crate::core::ratelimit::{headers, Event, Mode, RateLimits, Rule, Verdict};
use crate::core::request::RequestFacts;
use crate::core::store::Store;

/// Refusals (and degraded paths) of one rule are logged at most this often
/// per VM.
const WARN_EVERY: u64 = 1_000_000_000;

/// The counters of one rule: `floodgate.ratelimit.rule.<name>.<metric>`.
#[derive(Debug)]
struct RuleStats {
    allowed: Counter,
    limited: Counter,
    shadow_limited: Counter,
    evictions: Counter,
    cas_exhausted: Counter,
    store_errors: Counter,
    /// The rule's `ratelimit-policy` value, which never changes.
    policy: String,
    /// When a `warn` line about this rule was last written, in ns.
    last_warn: Cell<u64>,
}

impl RuleStats {
    fn define(rule: &Rule) -> Self {
        let counter = |metric: &str| {
            Counter::define(&format!("floodgate.ratelimit.rule.{}.{metric}", rule.name))
        };
        Self {
            allowed: counter("allowed"),
            limited: counter("limited"),
            shadow_limited: counter("shadow_limited"),
            evictions: counter("evictions"),
            cas_exhausted: counter("cas_exhausted"),
            store_errors: counter("store_errors"),
            policy: headers::policy(rule),
            last_warn: Cell::new(0),
        }
    }

    /// True (and the clock restarted) if a `warn` line may be written now.
    fn may_warn(&self, now: u64) -> bool {
        let due = now.saturating_sub(self.last_warn.get()) >= WARN_EVERY;
        if due {
            self.last_warn.set(now);
        }
        due
    }
}

/// The per-VM side of rate limiting: one set of counters per rule.
#[derive(Debug, Default)]
pub struct RateLimitStats {
    rules: Vec<RuleStats>,
}

/// The RateLimit fields for a response: the rule's `ratelimit-policy`
/// (made once per VM) and this request's `ratelimit` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    rule: usize,
    ratelimit: String,
}

/// What the stream does with a request after the rate limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Let it through; add these fields to the response, if any rule
    /// reported a quota.
    Continue(Option<Fields>),
    /// A 429 was sent.
    Refused,
}

impl RateLimitStats {
    /// Defines every rule's counters; once per VM, at configure time.
    pub fn define(limits: &RateLimits) -> Self {
        Self {
            rules: limits.rules.iter().map(RuleStats::define).collect(),
        }
    }

    /// Applies the rate limits to a request; sends the 429 when refused.
    pub fn apply(
        &self,
        limits: &RateLimits,
        store: &impl Store,
        hasher: &KeyHasher,
        request: &RequestFacts,
        now: u64,
    ) -> Outcome {
        let verdict = limits.admit(store, hasher, request, now);
        self.count(limits, &verdict, now);
        if let Some(refusal) = verdict.refused {
            let (Some(rule), Some(stats)) = (
                limits.rules.get(refusal.quota.rule),
                self.rules.get(refusal.quota.rule),
            ) else {
                return Outcome::Continue(None);
            };
            let retry_after = headers::retry_after(refusal.retry_after);
            let policy = &stats.policy;
            let ratelimit = headers::ratelimit(rule, &refusal.quota);
            let body = headers::body(rule, refusal.retry_after);
            reply::send(
                429,
                &[
                    ("retry-after", retry_after.as_bytes()),
                    ("ratelimit-policy", policy.as_bytes()),
                    ("ratelimit", ratelimit.as_bytes()),
                    ("content-type", b"application/json"),
                ],
                Some(body.as_bytes()),
            );
            return Outcome::Refused;
        }
        Outcome::Continue(verdict.tightest.and_then(|quota| {
            let rule = limits.rules.get(quota.rule)?;
            Some(Fields {
                rule: quota.rule,
                ratelimit: headers::ratelimit(rule, &quota),
            })
        }))
    }

    /// Sets `ratelimit-policy` and `ratelimit` on the response, replacing
    /// any the upstream sent. A host refusal is ignored: the fields are
    /// advice.
    pub fn set_response_fields(&self, fields: &Fields) {
        let Some(stats) = self.rules.get(fields.rule) else {
            return;
        };
        for (name, value) in [
            ("ratelimit-policy", &stats.policy),
            ("ratelimit", &fields.ratelimit),
        ] {
            let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, name, Some(value));
        }
    }

    fn count(&self, limits: &RateLimits, verdict: &Verdict, now: u64) {
        for &(index, event) in &verdict.events {
            let (Some(stats), Some(rule)) = (self.rules.get(index), limits.rules.get(index)) else {
                continue;
            };
            log::debug!("floodgate: rate limit {:?}: {event:?}", rule.name);
            match event {
                Event::Allowed => stats.allowed.inc(),
                Event::Limited => {
                    stats.limited.inc();
                    if stats.may_warn(now) {
                        let wait = verdict.refused.map_or(0, |r| whole_seconds(r.retry_after));
                        log::warn!(
                            "floodgate: rate limit {:?} refused a request (retry after {wait}s); \
                             at most one such line per rule per second",
                            rule.name
                        );
                    }
                }
                Event::ShadowLimited => stats.shadow_limited.inc(),
                Event::Evicted => stats.evictions.inc(),
                Event::Exhausted => {
                    stats.cas_exhausted.inc();
                    if stats.may_warn(now) {
                        log::warn!(
                            "floodgate: rate limit {:?}: shared data too contended, \
                             let a request through unlimited",
                            rule.name
                        );
                    }
                }
                Event::StoreFailed => {
                    stats.store_errors.inc();
                    if stats.may_warn(now) {
                        log::warn!(
                            "floodgate: rate limit {:?}: shared data failed, \
                             let a request through unlimited",
                            rule.name
                        );
                    }
                }
            }
        }
    }
}

/// One line describing `rule`, for the `info` log at configure time.
pub fn describe(rule: &Rule) -> String {
    let policy = &rule.policy;
    let algorithm = match policy.algorithm {
        Algorithm::TokenBucket { burst } => format!("token_bucket burst {burst}"),
        Algorithm::FixedWindow => "fixed_window".to_owned(),
        Algorithm::SlidingWindow => "sliding_window".to_owned(),
    };
    let mode = match rule.mode {
        Mode::Enforce => "enforce",
        Mode::Shadow => "shadow",
    };
    format!(
        "rate limit {:?}: {} per {}ms, {algorithm}, cost {}, {mode}, max_keys {}, {} key part(s)",
        rule.name,
        policy.limit,
        policy.period / 1_000_000,
        rule.cost,
        rule.max_keys,
        rule.key.len()
    )
}
