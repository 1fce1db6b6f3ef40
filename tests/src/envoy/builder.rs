//! Describing the Envoy a test wants.

use std::time::Duration;

use super::launch;
use super::{Envoy, StartError};
use crate::bootstrap::{Bootstrap, Route};
use crate::Upstream;

/// Builds and starts an [`Envoy`] running the floodgate plugin.
///
/// Defaults: plugin configuration `{}`, 2 worker threads, one route named
/// `default` for `/` answered by Envoy itself until an upstream is set,
/// HTTP/1.1 to upstreams, Wasm logs at `debug`.
#[derive(Clone, Debug)]
pub struct EnvoyBuilder {
    pub(super) plugin_config: String,
    pub(super) concurrency: usize,
    pub(super) routes: Vec<Route>,
    /// Routes (name, prefix) that go where the default route goes.
    pub(super) aliases: Vec<(String, String)>,
    pub(super) default_route: Route,
    pub(super) upstream_http2: bool,
    pub(super) use_remote_address: bool,
    pub(super) wasm_log_level: String,
    pub(super) lds: bool,
}

impl Default for EnvoyBuilder {
    fn default() -> EnvoyBuilder {
        EnvoyBuilder::new()
    }
}

impl EnvoyBuilder {
    /// The defaults above.
    pub fn new() -> EnvoyBuilder {
        EnvoyBuilder {
            plugin_config: "{}".to_owned(),
            concurrency: 2,
            routes: Vec::new(),
            aliases: Vec::new(),
            default_route: Route::new("default", "/"),
            upstream_http2: false,
            use_remote_address: false,
            wasm_log_level: "debug".to_owned(),
            lds: false,
        }
    }

    /// The plugin configuration (JSON text, passed to Envoy as is).
    pub fn plugin_config(mut self, json: impl Into<String>) -> EnvoyBuilder {
        self.plugin_config = json.into();
        self
    }

    /// Envoy's worker threads (`--concurrency`). Each runs its own Wasm VM.
    pub fn concurrency(mut self, workers: usize) -> EnvoyBuilder {
        self.concurrency = workers;
        self
    }

    /// Sends the default route (`/`) to `upstream`.
    pub fn upstream(mut self, upstream: &Upstream) -> EnvoyBuilder {
        self.default_route = self.default_route.upstream(upstream);
        self
    }

    /// Names the default route (default `default`).
    pub fn route_name(mut self, name: &str) -> EnvoyBuilder {
        self.default_route.name = name.to_owned();
        self
    }

    /// The default route's timeout (default 15 s).
    pub fn route_timeout(mut self, timeout: Duration) -> EnvoyBuilder {
        self.default_route = self.default_route.timeout(timeout);
        self
    }

    /// Adds a route, matched before the default one and after those added earlier.
    pub fn route(mut self, route: Route) -> EnvoyBuilder {
        self.routes.push(route);
        self
    }

    /// Adds a route named `name` for `prefix` that goes where the default
    /// route goes, so tests can tell requests apart by route name. Matched
    /// after the routes added with [`route`](EnvoyBuilder::route).
    pub fn extra_route_name(mut self, name: &str, prefix: &str) -> EnvoyBuilder {
        self.aliases.push((name.to_owned(), prefix.to_owned()));
        self
    }

    /// Speaks HTTP/2 (prior knowledge) to all upstreams instead of HTTP/1.1.
    pub fn upstream_http2(mut self, http2: bool) -> EnvoyBuilder {
        self.upstream_http2 = http2;
        self
    }

    /// Sets the connection manager's `use_remote_address`: Envoy then takes
    /// the peer of the connection as the client address (and appends it to
    /// `x-forwarded-for`) instead of trusting the header's rightmost entry.
    pub fn use_remote_address(mut self, use_remote: bool) -> EnvoyBuilder {
        self.use_remote_address = use_remote;
        self
    }

    /// Level of Envoy's `wasm` log component, which carries the plugin's logs.
    pub fn wasm_log_level(mut self, level: &str) -> EnvoyBuilder {
        self.wasm_log_level = level.to_owned();
        self
    }

    /// Serves the listener through file-based LDS (`dynamic_resources.lds_config`
    /// with `path_config_source`) instead of `static_resources`, so the test can
    /// change the plugin configuration of a running Envoy with
    /// [`Envoy::update_plugin_config`](super::Envoy::update_plugin_config).
    pub fn lds(mut self, lds: bool) -> EnvoyBuilder {
        self.lds = lds;
        self
    }

    /// The bootstrap YAML this builder produces.
    pub fn bootstrap_yaml(&self) -> String {
        self.bootstrap().to_yaml()
    }

    /// Starts Envoy and waits until it serves the listener. The error carries
    /// the reason and the tail of Envoy's log.
    pub fn start(self) -> Result<Envoy, StartError> {
        launch::start(&self)
    }

    /// Starts Envoy expecting it to refuse its configuration and exit with a
    /// non-zero code; returns its log. An error if it starts serving instead.
    pub fn start_expect_failure(self) -> Result<String, StartError> {
        launch::start_expect_failure(&self)
    }

    pub(super) fn bootstrap(&self) -> Bootstrap {
        let mut routes = self.routes.clone();
        for (name, prefix) in &self.aliases {
            routes.push(Route {
                name: name.clone(),
                prefix: prefix.clone(),
                ..self.default_route.clone()
            });
        }
        Bootstrap {
            plugin_config: self.plugin_config.clone(),
            wasm: crate::wasm_path(),
            routes,
            default_route: self.default_route.clone(),
            upstream_http2: self.upstream_http2,
            use_remote_address: self.use_remote_address,
        }
    }
}
