//! Test harness for floodgate: a real Envoy running the built plugin, upstream
//! servers the test programs, and an HTTP client with timeouts.
//!
//! Tests are plain `#[test]` functions. Everything asynchronous runs on one
//! shared Tokio runtime ([`runtime`]); the harness API is synchronous, so a
//! test reads top to bottom:
//!
//! ```no_run
//! use floodgate_tests::{client, Behavior, EnvoyBuilder, Upstream};
//!
//! let upstream = Upstream::start();
//! upstream.on("/hello", Behavior::status(201).body("hi"));
//! let envoy = EnvoyBuilder::new().plugin_config("{}").upstream(&upstream).start().unwrap();
//! let response = client::get(&envoy.url("/hello"));
//! assert_eq!(response.status, 201);
//! assert_eq!(upstream.hits("/hello"), 1);
//! ```
//!
//! Every process and server a test starts is stopped when its handle drops,
//! also when the test fails; a failing test prints the tail of Envoy's log.

mod bootstrap;
pub mod client;
mod envoy;
mod paths;
mod process;
mod upstream;

use std::future::Future;
use std::sync::OnceLock;

pub use bootstrap::Route;
pub use client::{Request, Response};
pub use envoy::{Envoy, EnvoyBuilder, StartError};
pub use paths::{envoy_binary, wasm_path, workspace_root};
pub use upstream::{Behavior, RecordedRequest, Upstream};

/// The runtime shared by all upstream servers and client calls of a test binary.
///
/// Two worker threads: the machines that run the suite have two cores, and
/// Envoy needs them more than the harness does.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("harness")
            .enable_all()
            .build()
            .expect("cannot build the harness runtime")
    })
}

/// Runs `future` to completion on the shared runtime.
///
/// Call it from a test thread, never from inside the runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// `len` bytes that are neither text nor repetitive, the same for the same
/// `seed` (a 64-bit LCG's high bytes): bodies that must arrive byte-exact.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}
