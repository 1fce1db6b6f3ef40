//! Envoy stats. Every name starts with `floodgate.`; Envoy shows them as
//! `wasmcustom.floodgate...` in `/stats`, and the bootstrap `stats_tags` in
//! `envoy/` turn the rule, breaker or cache name into a label.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// A counter; a no-op if Envoy refused to define it.
#[derive(Debug, Clone, Copy)]
pub struct Counter(Option<u32>);

impl Counter {
    /// Defines (or finds) the counter `name`.
    pub fn define(name: &str) -> Self {
        Self(define(MetricType::Counter, name))
    }

    /// Adds `n`.
    pub fn add(self, n: u64) {
        if let (Some(id), Ok(n)) = (self.0, i64::try_from(n)) {
            let _ = hostcalls::increment_metric(id, n);
        }
    }

    /// Adds one.
    pub fn inc(self) {
        self.add(1);
    }
}

/// A gauge; a no-op if Envoy refused to define it.
#[derive(Debug, Clone, Copy)]
pub struct Gauge(Option<u32>);

impl Gauge {
    /// Defines (or finds) the gauge `name`.
    pub fn define(name: &str) -> Self {
        Self(define(MetricType::Gauge, name))
    }

    /// Sets the value.
    pub fn set(self, value: u64) {
        if let Some(id) = self.0 {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}

fn define(kind: MetricType, name: &str) -> Option<u32> {
    match hostcalls::define_metric(kind, name) {
        Ok(id) => Some(id),
        Err(status) => {
            log::error!("floodgate: cannot define metric {name}: {status:?}");
            None
        }
    }
}
