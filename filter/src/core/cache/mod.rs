//! The shared response cache (RFC 9111) and the stale answers it gives
//! when the upstream fails (RFC 5861 `stale-if-error`).
//!
//! A request goes through [`Cache::on_request`], which answers a fresh hit
//! at once or says how to forward the request; the upstream's answer goes
//! through [`Cache::on_response`], which stores it, refreshes an entry from
//! a `304`, or replaces an error with a stale entry. Every stale answer is
//! decided by [`degrade`], and nowhere else.

pub mod answer;
pub mod date;
pub mod directives;
pub mod entry;
pub mod policy;
pub mod table;
pub mod vary;

mod flow;

pub use answer::Answer;
pub use entry::Entry;
pub use flow::{Cache, Forward, Pending, Plan, Reason, Responded};

use crate::core::matcher::Matcher;

/// The checked `cache` configuration. Durations are nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Label in metrics and shared-data keys.
    pub name: String,
    /// Which requests the cache looks at.
    pub matcher: Matcher,
    /// Slots in shared data (rounded up to whole sets of 4).
    pub max_entries: u32,
    /// The largest entry stored: body, replayed headers and bookkeeping.
    pub max_entry_bytes: u32,
    /// Freshness of cacheable 200s that carry none.
    pub default_ttl: u64,
    /// How long past freshness a stale entry may replace an error, unless
    /// the response set its own `stale-if-error`.
    pub stale_if_error: u64,
    /// Whether an open breaker may be answered from the cache.
    pub serve_stale_when_open: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            name: "default".to_owned(),
            matcher: Matcher::default(),
            max_entries: 10_000,
            max_entry_bytes: 1 << 20,
            default_ttl: 0,
            stale_if_error: 0,
            serve_stale_when_open: true,
        }
    }
}

/// What went wrong upstream, as far as degrading goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// An answer with this status reached the filter: the upstream's, or
    /// Envoy's own `503`/`504` for a refused connection, a reset or a
    /// timeout.
    Status(u16),
    /// A circuit breaker is open and did not forward the request.
    BreakerOpen,
}

/// The one place that decides whether a stored entry stands in for a
/// failure (the fallback order is: fresh hit, stale within its window, the
/// breaker's `fallback`, the error itself):
///
/// - only server errors (`5xx`) and an open breaker, never `4xx` (our own
///   `429` included): those are answers about the request, not failures;
/// - an open breaker only with `serve_stale_when_open`;
/// - only inside the entry's `stale-if-error` window, never for
///   `must-revalidate` or `no-cache` entries ([`policy::Freshness::usable_on_error`]).
///
/// Returns the `cache-status` detail to send with the stale answer.
pub fn degrade(
    config: &CacheConfig,
    entry: &Entry,
    failure: Failure,
    now: u64,
) -> Option<&'static str> {
    let detail = match failure {
        Failure::Status(status) if (500..=599).contains(&status) => "stale-if-error",
        Failure::Status(_) => return None,
        Failure::BreakerOpen if config.serve_stale_when_open => "breaker-open",
        Failure::BreakerOpen => return None,
    };
    entry
        .freshness
        .usable_on_error(now, config.stale_if_error)
        .then_some(detail)
}

#[cfg(test)]
mod tests;
