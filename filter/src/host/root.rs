//! The root context: one per VM, holds the checked configuration.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use super::breaker::Breakers;
use super::cache::{CacheHandle, CacheMetrics};
use super::facts;
use super::http::Stream;
use super::ratelimit::{self, RateLimitStats};
use super::seed;
use super::store::EnvoyStore;
use crate::config::Config;
use crate::core::hash::KeyHasher;

/// What every stream of one VM shares: the configuration and the handles
/// made from it once (hasher, metric ids).
#[derive(Debug)]
pub struct Plugin {
    /// The checked configuration.
    pub config: Config,
    /// Key fingerprints, with the seed every worker shares.
    pub hasher: KeyHasher,
    /// The rate limits' counters.
    pub rate_limit_stats: RateLimitStats,
    /// Circuit breaker metric handles.
    pub breakers: Breakers,
    /// The cache's counters, when a cache is configured.
    pub cache_metrics: Option<CacheMetrics>,
    /// A request's headers are fetched as the whole map (see
    /// [`facts::whole_map`]).
    pub whole_header_map: bool,
}

impl Plugin {
    fn new(config: Config, hasher: KeyHasher) -> Self {
        let rate_limit_stats = RateLimitStats::define(&config.rate_limits);
        let breakers = Breakers::new(&config.circuit_breakers);
        let cache_metrics = config.cache.as_ref().map(CacheMetrics::define);
        let whole_header_map = facts::whole_map(&config.needs);
        Self {
            config,
            hasher,
            rate_limit_stats,
            breakers,
            cache_metrics,
            whole_header_map,
        }
    }

    /// The configured cache with its counters.
    pub fn cache(&self) -> Option<CacheHandle<'_>> {
        Some(CacheHandle {
            config: self.config.cache.as_ref()?,
            metrics: self.cache_metrics.as_ref()?,
            hasher: &self.hasher,
        })
    }
}

/// Parses the configuration at `on_configure` and hands it to every stream.
#[derive(Default)]
pub struct Root {
    plugin: Option<Rc<Plugin>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        // Follow Envoy's level for the `wasm` component, so that debug lines
        // cost nothing unless someone asked for them.
        let level = proxy_wasm::hostcalls::get_log_level().unwrap_or(LogLevel::Info);
        proxy_wasm::set_log_level(level);

        let raw = self.get_plugin_configuration().unwrap_or_default();
        let config = match Config::parse(&raw) {
            Ok(config) => config,
            Err(err) => {
                // Returning false makes Envoy refuse the filter: better no
                // listener than a listener without its limits.
                log::error!("floodgate: invalid configuration: {err}");
                return false;
            }
        };
        let hasher = match seed::shared_hasher(&EnvoyStore) {
            Ok(hasher) => hasher,
            Err(err) => {
                log::error!("floodgate: {err}");
                return false;
            }
        };
        log::info!(
            "floodgate {}: configuration accepted ({})",
            env!("CARGO_PKG_VERSION"),
            describe(&config)
        );
        for rule in &config.rate_limits.rules {
            log::info!("floodgate: {}", ratelimit::describe(rule));
        }
        self.plugin = Some(Rc::new(Plugin::new(config, hasher)));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Envoy never creates streams for a VM whose configuration failed;
        // if it did, the filter would have nothing to enforce.
        let plugin = self.plugin.as_ref()?;
        Some(Box::new(Stream::new(Rc::clone(plugin))))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

fn describe(config: &Config) -> String {
    if config.is_passthrough() {
        "no features configured: passing every request through".to_owned()
    } else {
        "features configured".to_owned()
    }
}
