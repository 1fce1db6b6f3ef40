//! Envoy refuses a listener whose plugin configuration is invalid, and its
//! log says which JSON path was wrong.

use floodgate_tests::EnvoyBuilder;

#[test]
fn refuses_listener_when_trusted_hops_is_zero() {
    let log = EnvoyBuilder::new()
        .plugin_config(r#"{"client_ip": {"from": "x-forwarded-for", "trusted_hops": 0}}"#)
        .start_expect_failure()
        .unwrap();

    let refusal = log
        .lines()
        .find(|line| line.contains("floodgate: invalid configuration:"))
        .unwrap_or_else(|| panic!("no refusal in Envoy's log:\n{log}"));
    assert!(refusal.contains("[error]"), "{refusal}");
    assert!(refusal.contains("client_ip.trusted_hops"), "{refusal}");
    assert!(
        log.contains("Unable to create Wasm plugin floodgate"),
        "{log}"
    );
}

#[test]
fn starts_with_an_empty_configuration() {
    let mut envoy = EnvoyBuilder::new().plugin_config("{}").start().unwrap();
    assert!(envoy.is_running());
    assert!(!envoy.log().contains("invalid configuration"));
}
