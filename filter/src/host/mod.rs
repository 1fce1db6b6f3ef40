//! The proxy-wasm side: reads what Envoy knows, hands it to [`crate::core`],
//! and turns the answers into Envoy actions. Kept thin on purpose.

pub mod breaker;
pub mod cache;
pub mod facts;
pub mod http;
pub mod metrics;
pub mod ratelimit;
pub mod reply;
pub mod root;
pub mod seed;
pub mod store;

use std::cell::Cell;

use proxy_wasm::types::LogLevel;

/// Registers the root context and the panic hook. Called once per VM.
pub fn install() {
    proxy_wasm::set_log_level(LogLevel::Info);
    // The SDK's own hook logs the bare message; name the plugin so the line
    // can be found in a busy Envoy log.
    std::panic::set_hook(Box::new(|info| {
        let _ =
            proxy_wasm::hostcalls::log(LogLevel::Critical, &format!("floodgate: panic: {info}"));
    }));
    proxy_wasm::set_root_context(|_| Box::new(root::Root::default()));
}

/// The host clock in nanoseconds since the Unix epoch; 0 if the host fails
/// to answer (which Envoy never does).
pub fn now_nanos() -> u64 {
    proxy_wasm::hostcalls::get_current_time()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The host clock read at most once: a callback makes one and hands it
/// down, so every feature sees the same instant and a path that needs no
/// time pays no host call.
#[derive(Debug, Default)]
pub struct Clock(Cell<Option<u64>>);

impl Clock {
    /// Nanoseconds since the Unix epoch, read on the first call.
    pub fn now(&self) -> u64 {
        if let Some(now) = self.0.get() {
            return now;
        }
        let now = now_nanos();
        self.0.set(Some(now));
        now
    }
}
