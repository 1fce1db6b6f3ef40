//! The HTTP context: one per request.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::cache::CacheStream;
use super::root::Plugin;
use super::{facts, now_nanos};

/// Per-request state.
pub struct Stream {
    plugin: Rc<Plugin>,
    cache: CacheStream,
}

impl Stream {
    /// A stream of `plugin`.
    pub fn new(plugin: Rc<Plugin>) -> Self {
        Self {
            plugin,
            cache: CacheStream::default(),
        }
    }
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let config = &self.plugin.config;
        if config.is_passthrough() {
            return Action::Continue;
        }
        let facts = facts::read(config.client_ip, config.needs);
        let now = now_nanos();
        if let Some(cache) = self.plugin.cache() {
            if let Some(action) = self.cache.on_request(cache, &facts, now) {
                return action;
            }
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        if let Some(cache) = self.plugin.cache() {
            if let Some(action) = self
                .cache
                .on_response_headers(cache, end_of_stream, now_nanos())
            {
                return action;
            }
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some(cache) = self.plugin.cache() {
            self.cache
                .on_response_body(cache, body_size, end_of_stream, now_nanos());
        }
        Action::Continue
    }
}
