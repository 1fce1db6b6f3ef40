//! The HTTP context: one per request.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::facts;
use super::root::Plugin;

/// Per-request state.
pub struct Stream {
    plugin: Rc<Plugin>,
}

impl Stream {
    /// A stream of `plugin`.
    pub fn new(plugin: Rc<Plugin>) -> Self {
        Self { plugin }
    }
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let config = &self.plugin.config;
        if config.is_passthrough() {
            return Action::Continue;
        }
        let _facts = facts::read(config.client_ip, config.needs);
        Action::Continue
    }
}
