//! The HTTP context: one per request.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::facts;
use super::ratelimit::Outcome;
use super::root::Plugin;
use super::store::EnvoyStore;

/// Per-request state.
pub struct Stream {
    plugin: Rc<Plugin>,
    /// The filter answered this request itself: its own reply comes back
    /// through `on_http_response_headers` and must be left alone.
    local_reply: bool,
    /// `ratelimit-policy` and `ratelimit` values for the response.
    rate_limit_fields: Option<(String, String)>,
}

impl Stream {
    /// A stream of `plugin`.
    pub fn new(plugin: Rc<Plugin>) -> Self {
        Self {
            plugin,
            local_reply: false,
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
        let now = super::now_nanos();

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
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if self.local_reply {
            return Action::Continue;
        }
        if let Some((policy, ratelimit)) = self.rate_limit_fields.take() {
            self.set_http_response_header("ratelimit-policy", Some(&policy));
            self.set_http_response_header("ratelimit", Some(&ratelimit));
        }
        Action::Continue
    }
}
