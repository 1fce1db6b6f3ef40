//! floodgate: rate limiting, circuit breaking and a degrading response cache
//! for Envoy, as one proxy-wasm HTTP filter.
//!
//! [`core`] holds the decisions and runs natively; [`host`] is the thin
//! proxy-wasm layer that feeds it and acts on its answers.

pub mod config;
pub mod core;
pub mod host;

/// The module entry point Envoy calls once per VM.
mod entry {
    proxy_wasm::main! {{
        crate::host::install();
    }}
}
