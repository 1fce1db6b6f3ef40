//! The HTTP context: one per request.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::breaker::{Gate, Guard};
use super::ratelimit::Outcome;
use super::root::Plugin;
use super::store::EnvoyStore;
use super::{facts, now_nanos};

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
    /// The breakers this request passed.
    breaker_guards: Vec<Guard>,
    /// `ratelimit-policy` and `ratelimit` values for the response.
    rate_limit_fields: Option<(String, String)>,
}

impl Stream {
    /// A stream of `plugin`.
    pub fn new(plugin: Rc<Plugin>) -> Self {
        Self {
            plugin,
            local_reply: false,
            started: 0,
            responded: None,
            breaker_guards: Vec::new(),
            rate_limit_fields: None,
        }
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
        let facts = facts::read(config.client_ip, config.needs);
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

        let breakers = &config.circuit_breakers;
        let gate = plugin
            .breakers
            .admit(breakers, &facts, now, &mut self.breaker_guards);
        if let Gate::Answered = gate {
            self.local_reply = true;
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if self.responded.is_none() {
            self.responded = Some(now_nanos());
        }
        if self.local_reply {
            return Action::Continue;
        }
        if let Some((policy, ratelimit)) = self.rate_limit_fields.take() {
            self.set_http_response_header("ratelimit-policy", Some(&policy));
            self.set_http_response_header("ratelimit", Some(&ratelimit));
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let now = now_nanos();
        let duration = self.responded.unwrap_or(now).saturating_sub(self.started);
        let plugin = &self.plugin;
        plugin.breakers.report(
            &plugin.config.circuit_breakers,
            &self.breaker_guards,
            self.local_reply,
            duration,
            now,
        );
    }
}
