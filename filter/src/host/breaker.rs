//! Circuit breakers on the proxy-wasm side: admission on the request
//! headers, the open answer, outcome recording in `on_log`, metrics and logs.

use std::cell::Cell;

use crate::core::breaker::outcome::UPSTREAM_FAILURE_FLAGS;
use crate::core::breaker::{
    self, classify, Admission, Breaker, BreakerError, Decided, Fallback, Response, State, Ticket,
};
use crate::core::request::RequestFacts;

use super::facts;
use super::metrics::{Counter, Gauge};
use super::reply;
use super::store::EnvoyStore;

/// One second in nanoseconds.
const SECOND: u64 = 1_000_000_000;

/// Warnings for degraded paths are logged at most once per this period per VM.
const WARN_EVERY: u64 = 10 * SECOND;

/// The per-VM handles of every configured breaker.
#[derive(Debug, Default)]
pub struct Breakers {
    entries: Vec<Entry>,
    last_warning: Cell<u64>,
    /// Some breaker has a `slow_call` limit.
    time_calls: bool,
}

#[derive(Debug)]
struct Entry {
    key: String,
    metrics: Metrics,
    /// The gauge value this VM last wrote and when (ns): the gauge is
    /// written again only when the state this VM sees changes, on a
    /// transition, or after [`GAUGE_REFRESH`] (so another worker's stale
    /// write cannot stand for long).
    gauge_written: Cell<Option<(u64, u64)>>,
}

/// How long a VM leaves the state gauge alone while it sees no change.
const GAUGE_REFRESH: u64 = SECOND;

/// `floodgate.breaker.<name>.<metric>`.
#[derive(Debug, Clone, Copy)]
struct Metrics {
    /// Gauge: the state this VM last observed (0 closed, 1 open, 2 half-open).
    state: Gauge,
    opened: Counter,
    half_opened: Counter,
    closed: Counter,
    rejected: Counter,
    probes: Counter,
    failures: Counter,
    degraded: Counter,
}

impl Metrics {
    fn define(name: &str) -> Self {
        let metric = |suffix: &str| format!("floodgate.breaker.{name}.{suffix}");
        Self {
            state: Gauge::define(&metric("state")),
            opened: Counter::define(&metric("opened")),
            half_opened: Counter::define(&metric("half_opened")),
            closed: Counter::define(&metric("closed")),
            rejected: Counter::define(&metric("rejected")),
            probes: Counter::define(&metric("probes")),
            failures: Counter::define(&metric("failures")),
            degraded: Counter::define(&metric("degraded")),
        }
    }
}

/// A breaker a request passed, to report its outcome to in `on_log`.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    index: usize,
    ticket: Ticket,
}

/// What the breakers decided for a request.
#[derive(Debug)]
pub enum Gate {
    /// Go on to the upstream.
    Continue,
    /// Breaker `index` (in configuration order) is open, or half-open with
    /// every probe slot taken: the request must be answered locally, see
    /// [`Breakers::send_open_answer`].
    Open {
        /// The refusing breaker.
        index: usize,
        /// Nanoseconds until the breaker lets a probe through.
        retry_after: u64,
    },
}

/// The answer an open breaker gives when the cache had no copy to serve
/// (the whole order is decided in [`super::http`]).
#[derive(Debug)]
pub enum OpenAnswer<'a> {
    /// The configured `fallback` response.
    Fallback(&'a Fallback),
    /// `503` with `retry-after` and a JSON body naming the breaker.
    Unavailable {
        /// Whole seconds until the next probe, at least 1.
        retry_after: u64,
    },
}

impl Breakers {
    /// Defines the metrics of every breaker once per VM.
    pub fn new(breakers: &[Breaker]) -> Self {
        Self {
            entries: breakers
                .iter()
                .map(|b| Entry {
                    key: breaker::store_key(&b.name),
                    metrics: Metrics::define(&b.name),
                    gauge_written: Cell::new(None),
                })
                .collect(),
            last_warning: Cell::new(0),
            time_calls: breakers
                .iter()
                .any(|b| b.policy.failure.slow_call.is_some()),
        }
    }

    /// Asks every breaker whose `match` holds whether the request may reach
    /// the upstream. The first that refuses answers it; the breakers passed
    /// before that are in `guards` (a probe slot taken there is freed when
    /// the stream reports in `on_log`, as a neutral outcome).
    pub fn admit(
        &self,
        breakers: &[Breaker],
        facts: &RequestFacts,
        now: u64,
        guards: &mut Vec<Guard>,
    ) -> Gate {
        for (index, (breaker, entry)) in breakers.iter().zip(&self.entries).enumerate() {
            if !breaker.matcher.matches(facts) {
                continue;
            }
            let decided = match breaker::admit(&EnvoyStore, &entry.key, &breaker.policy, now) {
                Ok(decided) => decided,
                Err(err) => {
                    // Fail open: a breaker that cannot read its state lets
                    // the request through untracked.
                    self.degraded(breaker, entry, "admit", &err, now);
                    continue;
                }
            };
            self.observe(breaker, entry, &decided, now);
            match decided.value {
                Admission::Pass(ticket) => guards.push(Guard { index, ticket }),
                Admission::Probe(ticket) => {
                    entry.metrics.probes.inc();
                    log::debug!("floodgate: breaker {}: probe admitted", breaker.name);
                    guards.push(Guard { index, ticket });
                }
                Admission::Rejected { retry_after, state } => {
                    entry.metrics.rejected.inc();
                    log::debug!(
                        "floodgate: breaker {}: {}: request answered locally",
                        breaker.name,
                        state.name()
                    );
                    return Gate::Open { index, retry_after };
                }
            }
        }
        Gate::Continue
    }

    /// Answers a request that breaker `index` refused, when the cache had
    /// nothing to serve: the breaker's `fallback`, else `503`.
    pub fn send_open_answer(&self, breakers: &[Breaker], index: usize, retry_after: u64) {
        if let Some(breaker) = breakers.get(index) {
            send(breaker, open_answer(breaker, retry_after));
        }
    }

    /// True when some breaker counts slow calls, so a stream must time the
    /// upstream's answer.
    pub fn time_calls(&self) -> bool {
        self.time_calls
    }

    /// Reports how the request ended to every breaker it passed. Reads
    /// Envoy's `response.*` properties once, and only those the outcome
    /// depends on.
    pub fn report(&self, breakers: &[Breaker], guards: &[Guard], ended: Ended, now: u64) {
        if guards.is_empty() {
            return;
        }
        let response = read_response(ended);
        for guard in guards {
            let (Some(breaker), Some(entry)) =
                (breakers.get(guard.index), self.entries.get(guard.index))
            else {
                continue;
            };
            let outcome = classify(&breaker.policy.failure, &response);
            if matches!(outcome, breaker::Outcome::Failure(_)) {
                entry.metrics.failures.inc();
            }
            log::debug!(
                "floodgate: breaker {}: status {} flags {:#x}: {outcome:?}",
                breaker.name,
                response.status,
                response.flags
            );
            let policy = &breaker.policy;
            match breaker::report(&EnvoyStore, &entry.key, policy, guard.ticket, outcome, now) {
                Ok(decided) => self.observe(breaker, entry, &decided, now),
                Err(err) => self.degraded(breaker, entry, "report", &err, now),
            }
        }
    }

    /// Sets the gauge to what was seen and, for the caller whose CAS made a
    /// transition, counts and logs it.
    fn observe<T>(&self, breaker: &Breaker, entry: &Entry, decided: &Decided<T>, now: u64) {
        let value = decided.state.gauge();
        let due = match entry.gauge_written.get() {
            Some((written, at)) => {
                written != value
                    || decided.transition.is_some()
                    || now.saturating_sub(at) >= GAUGE_REFRESH
            }
            None => true,
        };
        if due {
            entry.metrics.state.set(value);
            entry.gauge_written.set(Some((value, now)));
        }
        let Some(transition) = decided.transition else {
            return;
        };
        match transition.to {
            State::Open => entry.metrics.opened.inc(),
            State::HalfOpen => entry.metrics.half_opened.inc(),
            State::Closed => entry.metrics.closed.inc(),
        }
        log::info!("floodgate: breaker {}: {transition}", breaker.name);
    }

    fn degraded(&self, breaker: &Breaker, entry: &Entry, what: &str, err: &BreakerError, now: u64) {
        entry.metrics.degraded.inc();
        if now.saturating_sub(self.last_warning.get()) >= WARN_EVERY {
            self.last_warning.set(now);
            log::warn!(
                "floodgate: breaker {}: {what} skipped, request passed untracked: {err}",
                breaker.name
            );
        }
    }
}

/// What an open breaker answers itself: its `fallback`, else `503`.
pub fn open_answer(breaker: &Breaker, retry_after: u64) -> OpenAnswer<'_> {
    match &breaker.fallback {
        Some(fallback) => OpenAnswer::Fallback(fallback),
        None => OpenAnswer::Unavailable {
            retry_after: retry_after.div_ceil(SECOND).max(1),
        },
    }
}

fn send(breaker: &Breaker, answer: OpenAnswer) {
    match answer {
        OpenAnswer::Fallback(fallback) => {
            let headers: Vec<(&str, &[u8])> = fallback
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes()))
                .collect();
            reply::send(fallback.status, &headers, fallback.body.as_deref());
        }
        OpenAnswer::Unavailable { retry_after } => {
            let seconds = retry_after.to_string();
            let body = format!(
                "{{\"error\":\"circuit breaker open\",\"breaker\":\"{}\",\"retry_after\":{retry_after}}}",
                breaker.name
            );
            reply::send(
                503,
                &[
                    ("retry-after", seconds.as_bytes()),
                    ("content-type", b"application/json"),
                ],
                Some(body.as_bytes()),
            );
        }
    }
}

/// What the stream knows about how its request ended, before asking Envoy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ended {
    /// This filter answered the request itself.
    pub local_reply: bool,
    /// The status of a failure the cache hid behind a stale copy.
    pub replaced: Option<u16>,
    /// The `:status` of the response that passed through this filter, when
    /// it was not replaced by a reply of the filter's own.
    pub status: Option<u16>,
    /// From the request headers to the response headers (or to the end).
    pub duration: u64,
}

/// Envoy's view of the finished request (`response.code`,
/// `response.code_details`, `response.flags`), reading only what
/// [`classify`] looks at:
///
/// - this filter's own reply is neutral whatever Envoy says: nothing read;
/// - `replaced` is the status of a failure the cache hid behind a stale
///   copy: Envoy then reports the copy (200, no details), so the failure is
///   taken from the cache, and only the flags are read (an upstream 5xx
///   leaves no failure flag; Envoy's own 503/504 for a reset or timeout
///   keeps its flag);
/// - otherwise `response.code_details` tells whether the upstream answered;
///   if it did, the status is the `:status` this filter saw (or
///   `response.code` when it saw none), and the flags are not needed; if
///   not, only the flags matter.
///
/// The status alone cannot stand in for `code_details`: Envoy's own error
/// replies can carry any status (a gRPC request's connect failure is a 200
/// with `grpc-status: 14`; `local_reply_config` may remap a 503 to a 200).
fn read_response(ended: Ended) -> Response {
    let number = |path: &[&str]| {
        let bytes = facts::property(path);
        <[u8; 8]>::try_from(bytes.as_slice())
            .map(u64::from_le_bytes)
            .unwrap_or(0)
    };
    let mut response = Response {
        status: ended.status.unwrap_or(0),
        via_upstream: false,
        flags: 0,
        duration: ended.duration,
        local_reply: false,
    };
    if let Some(status) = ended.replaced {
        response.status = status;
        response.flags = number(&["response", "flags"]);
        response.via_upstream = response.flags & UPSTREAM_FAILURE_FLAGS == 0;
        return response;
    }
    if ended.local_reply {
        response.local_reply = true;
        return response;
    }
    response.via_upstream = facts::property(&["response", "code_details"]) == b"via_upstream";
    if response.via_upstream {
        if ended.status.is_none() {
            response.status = u16::try_from(number(&["response", "code"])).unwrap_or(0);
        }
    } else {
        response.flags = number(&["response", "flags"]);
    }
    response
}
