//! A proxy-wasm HTTP filter that does nothing.
//!
//! `make bench` loads it into Envoy next to floodgate to measure the floor
//! every wasm filter pays on V8: one root context, one HTTP context per
//! stream, and the default callbacks, which let every request and response
//! continue untouched. It reads no header and calls the host for nothing, so
//! what it costs is the wasm machinery itself.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

/// The root context: accepts any configuration.
struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The per-stream context: every callback keeps its default (continue).
struct Stream;

impl Context for Stream {}

impl HttpContext for Stream {}
