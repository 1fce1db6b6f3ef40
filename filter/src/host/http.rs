//! The HTTP context: one per request. This is the one place that orders
//! the features and decides how a request degrades.
//!
//! On the request: the rate limits come first and may answer `429` (a
//! request served from the cache still spends its tokens); then the cache
//! answers a fresh hit (no breaker state is touched for it); then the
//! breakers admit the request, and an open breaker answers through
//! [`Stream::answer_open_breaker`]. On the response: the cache stores, or
//! replaces an upstream failure with a stale copy, and an admitted request's
//! answer gets the RateLimit fields. In `on_log`: the breakers learn how the
//! call ended.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::breaker::{Ended, Gate, Guard};
use super::cache::CacheStream;
use super::ratelimit::{Fields, Outcome};
use super::root::Plugin;
use super::store::EnvoyStore;
use super::{facts, now_nanos, Clock};
use crate::core::request::RequestFacts;

/// Per-request state.
pub struct Stream {
    plugin: Rc<Plugin>,
    /// This filter answered the request itself; its own reply comes back
    /// through `on_http_response_headers` and must be left alone there.
    local_reply: bool,
    /// When the request headers arrived (ns).
    started: u64,
    /// When the response headers arrived (ns), if they did.
    responded: Option<u64>,
    /// The `:status` of the last response that passed through, read only
    /// for the breakers.
    status: Option<u16>,
    /// The breakers this request passed.
    breaker_guards: Vec<Guard>,
    /// The cache's view of this request.
    cache: CacheStream,
    /// The RateLimit fields for the response.
    rate_limit_fields: Option<Fields>,
}

impl Stream {
    /// A stream of `plugin`.
    pub fn new(plugin: Rc<Plugin>) -> Self {
        Self {
            plugin,
            local_reply: false,
            started: 0,
            responded: None,
            status: None,
            breaker_guards: Vec::new(),
            cache: CacheStream::default(),
            rate_limit_fields: None,
        }
    }

    /// The fallback order for a request an open breaker refused, written
    /// once: a cached copy (fresh, or stale inside its `stale-if-error`
    /// window, when `serve_stale_when_open`), then the breaker's `fallback`,
    /// then `503` with `retry-after`.
    fn answer_open_breaker(
        &mut self,
        index: usize,
        retry_after: u64,
        facts: &RequestFacts,
        now: u64,
    ) -> Action {
        self.local_reply = true;
        let plugin = Rc::clone(&self.plugin);
        if let Some(cache) = plugin.cache() {
            if let Some(action) = self.cache.stale_for_open_breaker(cache, facts, now) {
                return action;
            }
        }
        self.cache.abandon();
        plugin
            .breakers
            .send_open_answer(&plugin.config.circuit_breakers, index, retry_after);
        Action::Pause
    }
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let plugin = Rc::clone(&self.plugin);
        let config = &plugin.config;
        if config.is_passthrough() {
            return Action::Continue;
        }
        let facts = facts::read(plugin.whole_header_map, config.client_ip, &config.needs);
        let now = now_nanos();
        self.started = now;

        match plugin.rate_limit_stats.apply(
            &config.rate_limits,
            &EnvoyStore,
            &plugin.hasher,
            &facts,
            now,
        ) {
            Outcome::Refused => {
                self.local_reply = true;
                return Action::Pause;
            }
            Outcome::Continue(fields) => self.rate_limit_fields = fields,
        }

        if let Some(cache) = plugin.cache() {
            if let Some(action) = self.cache.on_request(cache, &facts, now) {
                self.local_reply = true;
                return action;
            }
        }

        let breakers = &config.circuit_breakers;
        match plugin
            .breakers
            .admit(breakers, &facts, now, &mut self.breaker_guards)
        {
            Gate::Continue => {
                if let Some(cache) = plugin.cache() {
                    self.cache.forward(cache);
                }
                Action::Continue
            }
            Gate::Open { index, retry_after } => {
                self.answer_open_breaker(index, retry_after, &facts, now)
            }
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        // The clock is read only for what needs it: a breaker's slow-call
        // limit, or the cache handling the upstream's answer.
        let clock = Clock::default();
        let guarded = !self.breaker_guards.is_empty();
        if guarded && self.responded.is_none() && self.plugin.breakers.time_calls() {
            self.responded = Some(clock.now());
        }
        if let Some(cache) = self.plugin.cache() {
            if let Some(action) = self.cache.on_response_headers(cache, end_of_stream, &clock) {
                return action;
            }
        }
        if !self.breaker_guards.is_empty() && !self.local_reply && !self.cache.answered() {
            self.status = self.cache.seen_status().or_else(facts::response_status);
        }
        // After the cache has read the response, so that a stored copy
        // never carries one request's quota. Absent on our own 429, which
        // has them already.
        if let Some(fields) = self.rate_limit_fields.take() {
            self.plugin.rate_limit_stats.set_response_fields(&fields);
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some(cache) = self.plugin.cache() {
            self.cache
                .on_response_body(cache, body_size, end_of_stream, &Clock::default());
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if self.breaker_guards.is_empty() {
            // Only the breakers learn from how a request ended.
            return;
        }
        let now = now_nanos();
        let duration = self.responded.unwrap_or(now).saturating_sub(self.started);
        // A stale copy that replaced an upstream failure hides it from
        // Envoy's `response.*` properties; the breaker must still count it.
        let ended = Ended {
            local_reply: self.local_reply,
            replaced: self.cache.replaced_failure(),
            // A reply the cache put in place of the upstream's answer is
            // Envoy's to describe.
            status: self.status.filter(|_| !self.cache.answered()),
            duration,
        };
        let plugin = &self.plugin;
        plugin.breakers.report(
            &plugin.config.circuit_breakers,
            &self.breaker_guards,
            ended,
            now,
        );
    }
}
