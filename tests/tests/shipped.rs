//! The Envoy files shipped in `envoy/` agree with each other and with the
//! bootstrap the tests run.

use std::fs;

use floodgate_tests::{workspace_root, EnvoyBuilder};

fn read(path: &str) -> String {
    fs::read_to_string(workspace_root().join(path)).unwrap()
}

/// The `stats_config:` block of the shipped fragment, without its comments.
fn stats_config() -> String {
    let fragment = read("envoy/stats_tags.yaml");
    let start = fragment.find("stats_config:").unwrap();
    fragment[start..].to_owned()
}

#[test]
fn demo_uses_the_shipped_stats_tags() {
    assert!(read("envoy/demo.yaml").contains(&stats_config()));
}

#[test]
fn test_bootstrap_uses_the_shipped_stats_tags() {
    assert!(EnvoyBuilder::new()
        .bootstrap_yaml()
        .contains(&stats_config()));
}
