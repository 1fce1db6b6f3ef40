//! Where the harness finds the workspace, the plugin and Envoy.

use std::env;
use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf()
}

/// The plugin under test: `$FLOODGATE_WASM`, or the release build in the workspace.
///
/// Panics with a hint when the file does not exist, so a missing build reads
/// as such rather than as an Envoy start-up failure.
pub fn wasm_path() -> PathBuf {
    let path = match env::var_os("FLOODGATE_WASM") {
        Some(path) => PathBuf::from(path),
        None => workspace_root().join("target/wasm32-wasip1/release/floodgate.wasm"),
    };
    assert!(
        path.is_file(),
        "plugin not found at {} (run `make build` or set FLOODGATE_WASM)",
        path.display()
    );
    path
}

/// The Envoy binary: `$ENVOY`, or the one `make envoy` installs in `.venv`.
pub fn envoy_binary() -> PathBuf {
    let path = match env::var_os("ENVOY") {
        Some(path) => PathBuf::from(path),
        None => workspace_root().join(".venv/bin/envoy"),
    };
    assert!(
        path.exists(),
        "Envoy not found at {} (run `make envoy` or set ENVOY)",
        path.display()
    );
    path
}
