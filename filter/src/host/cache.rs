//! The cache in Envoy: reads what the core needs, acts on its plans, and
//! counts every decision.
//!
//! Replies from the cache are local replies. `send_http_response` takes
//! `&str` header values and Envoy adds its own `content-type` and
//! `content-length` to a local reply; the reply then passes back through
//! this filter's `on_http_response_headers`, where [`CacheStream`] puts the
//! stored header bytes back exactly (see [`CacheStream::on_response_headers`]).

use std::cell::Cell;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, BufferType, MapType};

use super::metrics::Counter;
use super::store::EnvoyStore;
use super::Clock;
use crate::core::cache::table::Stored;
use crate::core::cache::{Answer, Cache, CacheConfig, Forward, Pending, Plan, Responded};
use crate::core::hash::KeyHasher;
use crate::core::request::RequestFacts;

/// At most one `warn` line per VM for degraded answers in this time, ns.
const WARN_EVERY: u64 = 10_000_000_000;

/// The counters of one cache (`floodgate.cache.<name>.<metric>`), defined
/// once per VM.
#[derive(Debug)]
pub struct CacheMetrics {
    hits: Counter,
    misses: Counter,
    stores: Counter,
    stale_served: Counter,
    revalidations: Counter,
    evictions: Counter,
    bypasses: Counter,
    errors: Counter,
    last_warn: Cell<u64>,
}

impl CacheMetrics {
    /// Defines the counters of cache `config.name` (and says, once per VM,
    /// what the cache was configured with).
    pub fn define(config: &CacheConfig) -> Self {
        log::info!(
            "floodgate: cache {}: {} entries of up to {} bytes, default_ttl {} s, stale_if_error {} s, serve_stale_when_open {}",
            config.name,
            config.max_entries,
            config.max_entry_bytes,
            config.default_ttl / 1_000_000_000,
            config.stale_if_error / 1_000_000_000,
            config.serve_stale_when_open
        );
        let counter =
            |metric: &str| Counter::define(&format!("floodgate.cache.{}.{metric}", config.name));
        Self {
            hits: counter("hits"),
            misses: counter("misses"),
            stores: counter("stores"),
            stale_served: counter("stale_served"),
            revalidations: counter("revalidations"),
            evictions: counter("evictions"),
            bypasses: counter("bypasses"),
            errors: counter("errors"),
            last_warn: Cell::new(0),
        }
    }

    fn stored(&self, stored: Stored) {
        match stored {
            Stored::Done { evicted } => {
                self.stores.inc();
                if evicted {
                    self.evictions.inc();
                }
            }
            Stored::Contended => self.errors.inc(),
        }
    }

    fn warn_degraded(&self, now: u64, what: &str) {
        if self.last_warn.get().saturating_add(WARN_EVERY) <= now {
            self.last_warn.set(now);
            log::warn!("floodgate: cache: {what} (further ones in the next 10 s are counted only)");
        }
    }
}

/// One cache with what it needs from the VM.
#[derive(Debug, Clone, Copy)]
pub struct CacheHandle<'a> {
    /// The checked configuration.
    pub config: &'a CacheConfig,
    /// The counters.
    pub metrics: &'a CacheMetrics,
    /// The shared key hasher.
    pub hasher: &'a KeyHasher,
}

impl<'a> CacheHandle<'a> {
    fn core(&self) -> Cache<'a, EnvoyStore> {
        Cache::new(self.config, &EnvoyStore, self.hasher)
    }
}

/// The cache's state for one request.
#[derive(Debug, Default)]
pub struct CacheStream {
    forward: Option<Box<Forward>>,
    pending: Option<Pending>,
    /// `cache-status` to add to the upstream's answer.
    cache_status: Option<String>,
    /// Headers of a reply this cache sent, to be set exactly when the reply
    /// passes back through `on_http_response_headers`; empty when Envoy's
    /// local reply already carries them exactly (see [`sent_exactly`]).
    replay: Option<Vec<(String, Vec<u8>)>>,
    /// The status of an error answer this cache replaced with a stale entry.
    replaced: Option<u16>,
    /// The `:status` of the answer this cache inspected, if it did.
    status: Option<u16>,
}

impl CacheStream {
    /// True once this cache answered the request itself.
    pub fn answered(&self) -> bool {
        self.replay.is_some()
    }

    /// The status of the error (an upstream `5xx`, or Envoy's own `503`/`504`
    /// for a reset, refused connection or timeout) that a stale entry
    /// replaced. Checked on Envoy 1.40: in `on_log`, `response.code` then
    /// reads 200 and `response.code_details` is empty, so a replaced
    /// upstream `5xx` is invisible there (`response.flags` still holds 4 for
    /// a timeout, 64 for a reset, 32 for a refused connection): a circuit
    /// breaker must count this failure from here.
    pub fn replaced_failure(&self) -> Option<u16> {
        self.replaced
    }

    /// The `:status` of the response this cache read in
    /// [`Self::on_response_headers`], so nobody reads it again.
    pub fn seen_status(&self) -> Option<u16> {
        self.status
    }

    /// A request arrived: `Some(Action::Pause)` when the cache answered it.
    pub fn on_request(
        &mut self,
        cache: CacheHandle,
        facts: &RequestFacts,
        now: u64,
    ) -> Option<Action> {
        let m = cache.metrics;
        let plan = match cache.core().on_request(facts, now) {
            Ok(plan) => plan,
            Err(err) => {
                m.errors.inc();
                log::warn!("floodgate: cache: lookup failed, forwarding: {err}");
                return None;
            }
        };
        match plan {
            Plan::Ignore => None,
            Plan::Bypass(reason) => {
                m.bypasses.inc();
                log::debug!(
                    "floodgate: cache {}: bypass ({})",
                    cache.config.name,
                    reason.fwd()
                );
                self.cache_status = Some(format!("floodgate; fwd={}", reason.fwd()));
                None
            }
            Plan::Hit(answer) => {
                m.hits.inc();
                log::debug!(
                    "floodgate: cache {}: hit, age {} s",
                    cache.config.name,
                    answer.age
                );
                self.send(answer);
                Some(Action::Pause)
            }
            Plan::Forward(forward) => {
                // Counted, and its validators added, only once the request
                // really goes upstream (see `forward`): an open breaker may
                // still answer it.
                self.forward = Some(forward);
                None
            }
        }
    }

    /// The request goes upstream: count the miss and add the validators of
    /// a stale entry, if the lookup in [`Self::on_request`] asked for it.
    pub fn forward(&mut self, cache: CacheHandle) {
        let Some(forward) = &self.forward else {
            return;
        };
        let m = cache.metrics;
        m.misses.inc();
        m.errors.add(u64::from(forward.corrupt));
        log::debug!(
            "floodgate: cache {}: forward ({}), {} validator(s) added",
            cache.config.name,
            forward.reason.fwd(),
            forward.conditional.len()
        );
        for (name, value) in &forward.conditional {
            let _ = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, Some(value));
        }
    }

    /// Someone else (an open breaker's fallback) answers the request: the
    /// cache neither counts it nor labels that answer.
    pub fn abandon(&mut self) {
        self.forward = None;
        self.cache_status = None;
    }

    /// For an open breaker: answers the request from the cache when a
    /// fresh entry, or a stale one inside its `stale-if-error` window (and
    /// `serve_stale_when_open`), exists. `Some(Action::Pause)` when it
    /// answered; `None` leaves the breaker to send its `fallback`.
    pub fn stale_for_open_breaker(
        &mut self,
        cache: CacheHandle,
        facts: &RequestFacts,
        now: u64,
    ) -> Option<Action> {
        match cache.core().stale_for_open_breaker(facts, now) {
            Ok(Some((answer, stale))) => {
                if stale {
                    cache.metrics.stale_served.inc();
                    cache
                        .metrics
                        .warn_degraded(now, "serving stale entries for an open breaker");
                } else {
                    cache.metrics.hits.inc();
                }
                log::debug!(
                    "floodgate: cache {}: answered for an open breaker",
                    cache.config.name
                );
                self.send(answer);
                Some(Action::Pause)
            }
            Ok(None) => None,
            Err(err) => {
                cache.metrics.errors.inc();
                log::warn!("floodgate: cache: lookup failed: {err}");
                None
            }
        }
    }

    /// Response headers arrived (the upstream's, Envoy's own error reply,
    /// or this cache's reply coming back): `Some(Action::Pause)` when the
    /// cache replaced the answer.
    pub fn on_response_headers(
        &mut self,
        cache: CacheHandle,
        end_of_stream: bool,
        clock: &Clock,
    ) -> Option<Action> {
        if let Some(headers) = &self.replay {
            if headers.is_empty() {
                return None;
            }
            // Our own reply: set the stored bytes exactly, replacing what
            // Envoy put in for a local reply (its `content-type:
            // text/plain` too, when the stored answer had none).
            let _ = hostcalls::remove_map_value(MapType::HttpResponseHeaders, "content-type");
            for (name, _) in headers {
                let _ = hostcalls::remove_map_value(MapType::HttpResponseHeaders, name);
            }
            for (name, value) in headers {
                let _ = hostcalls::add_map_value_bytes(MapType::HttpResponseHeaders, name, value);
            }
            return None;
        }
        let Some(forward) = self.forward.take() else {
            if let Some(status) = &self.cache_status {
                let _ =
                    hostcalls::add_map_value(MapType::HttpResponseHeaders, "cache-status", status);
            }
            return None;
        };
        let headers = hostcalls::get_map_bytes(MapType::HttpResponseHeaders).unwrap_or_default();
        let status = headers
            .iter()
            .find(|(name, _)| name == ":status")
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<u16>().ok())
            .unwrap_or(0);
        self.status = Some(status).filter(|&s| s != 0);
        let m = cache.metrics;
        let now = clock.now();
        let responded = match cache.core().on_response(&forward, status, &headers, now) {
            Ok(responded) => responded,
            Err(err) => {
                m.errors.inc();
                log::warn!("floodgate: cache: {err}");
                return None;
            }
        };
        match responded {
            Responded::Replace {
                answer,
                revalidated,
                stored,
            } => {
                if revalidated {
                    m.revalidations.inc();
                    log::debug!(
                        "floodgate: cache {}: revalidated by a 304",
                        cache.config.name
                    );
                } else {
                    self.replaced = Some(status);
                    m.stale_served.inc();
                    let details = super::facts::property(&["response", "code_details"]);
                    log::debug!(
                        "floodgate: cache {}: stale answer for a {status} ({})",
                        cache.config.name,
                        String::from_utf8_lossy(&details)
                    );
                    m.warn_degraded(now, "serving stale entries in place of upstream errors");
                }
                if let Some(stored) = stored {
                    m.stored(stored);
                }
                self.send(answer);
                Some(Action::Pause)
            }
            Responded::Pass {
                cache_status,
                pending,
                not_stored,
            } => {
                if let Some(why) = not_stored {
                    m.bypasses.inc();
                    log::debug!(
                        "floodgate: cache {}: not stored ({})",
                        cache.config.name,
                        why.as_str()
                    );
                }
                let _ = hostcalls::add_map_value(
                    MapType::HttpResponseHeaders,
                    "cache-status",
                    &cache_status,
                );
                self.pending = pending;
                if end_of_stream {
                    self.finish(cache, now);
                }
                None
            }
        }
    }

    /// A response body chunk of `size` bytes passed by (never held back).
    pub fn on_response_body(
        &mut self,
        cache: CacheHandle,
        size: usize,
        end_of_stream: bool,
        clock: &Clock,
    ) {
        let Some(pending) = &mut self.pending else {
            return;
        };
        if size > 0 {
            let chunk = hostcalls::get_buffer(BufferType::HttpResponseBody, 0, size)
                .ok()
                .flatten()
                .unwrap_or_default();
            if !pending.push(&chunk) {
                log::debug!(
                    "floodgate: cache {}: body too large to store",
                    cache.config.name
                );
                self.pending = None;
                return;
            }
        }
        if end_of_stream {
            self.finish(cache, clock.now());
        }
    }

    fn finish(&mut self, cache: CacheHandle, now: u64) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        match cache.core().store(pending, now) {
            Ok(Some(stored)) => {
                cache.metrics.stored(stored);
                log::debug!("floodgate: cache {}: stored", cache.config.name);
            }
            Ok(None) => log::debug!(
                "floodgate: cache {}: incomplete body, not stored",
                cache.config.name
            ),
            Err(err) => {
                cache.metrics.errors.inc();
                log::warn!("floodgate: cache: store failed: {err}");
            }
        }
    }

    fn send(&mut self, answer: Answer) {
        let headers: Vec<(&str, &[u8])> = answer
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        super::reply::send(u32::from(answer.status), &headers, answer.body.as_deref());
        let exact = sent_exactly(&answer);
        self.replay = Some(if exact { Vec::new() } else { answer.headers });
    }
}

/// True when Envoy's local reply already carries `answer`'s headers byte
/// for byte, so the replay in [`CacheStream::on_response_headers`] (two
/// host calls a header) can be skipped. Envoy adds the given headers in
/// order, then, for a non-empty body, sets `content-length` to the body's
/// length and `content-type: text/plain` only when none was given; for an
/// empty body (or `HEAD`) it removes both. `send_http_response` takes text,
/// so a value that is not UTF-8 needs the replay too.
fn sent_exactly(answer: &Answer) -> bool {
    let Some(body) = answer.body.as_deref().filter(|b| !b.is_empty()) else {
        return false;
    };
    let length = body.len().to_string();
    let mut typed = false;
    for (name, value) in &answer.headers {
        if std::str::from_utf8(value).is_err() {
            return false;
        }
        match name.as_str() {
            "content-type" => typed = true,
            "content-length" if value.as_slice() != length.as_bytes() => return false,
            _ => {}
        }
    }
    typed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(headers: &[(&str, &[u8])], body: Option<&[u8]>) -> Answer {
        Answer {
            status: 200,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.to_vec()))
                .collect(),
            body: body.map(<[u8]>::to_vec),
            age: 0,
        }
    }

    #[test]
    fn a_typed_text_answer_with_a_body_needs_no_replay() {
        let typed: &[(&str, &[u8])] = &[("content-type", b"text/html"), ("content-length", b"2")];
        assert!(sent_exactly(&answer(typed, Some(b"hi"))));
    }

    #[test]
    fn what_envoy_would_change_is_replayed() {
        let typed: &[(&str, &[u8])] = &[("content-type", b"text/html"), ("content-length", b"2")];
        assert!(!sent_exactly(&answer(typed, None)), "HEAD");
        assert!(!sent_exactly(&answer(typed, Some(b""))), "empty body");
        assert!(!sent_exactly(&answer(typed, Some(b"abc"))), "length");
        let untyped: &[(&str, &[u8])] = &[("content-length", b"2")];
        assert!(!sent_exactly(&answer(untyped, Some(b"hi"))), "no type");
        let binary: &[(&str, &[u8])] = &[("content-type", b"text/html"), ("x-raw", b"\xff")];
        assert!(!sent_exactly(&answer(binary, Some(b"hi"))), "not UTF-8");
    }
}
