//! One test per refusal, with the JSON inline.

use crate::config::Config;
use crate::core::breaker::{Breaker, StatusMatch};

const S: u64 = 1_000_000_000;

fn parse(entry: &str) -> Result<Breaker, String> {
    let json = format!(r#"{{"circuit_breakers": [{entry}]}}"#);
    Config::parse(json.as_bytes())
        .map(|c| c.circuit_breakers.into_iter().next().unwrap())
        .map_err(|e| e.to_string())
}

fn refused(entry: &str) -> String {
    parse(entry).unwrap_err()
}

#[test]
fn defaults_for_a_bare_breaker() {
    let b = parse(r#"{"name": "catalog"}"#).unwrap();
    assert_eq!(b.name, "catalog");
    assert_eq!(b.policy.failure.statuses, vec![StatusMatch::Class(5)]);
    assert!(b.policy.failure.resets);
    assert_eq!(b.policy.failure.slow_call, None);
    assert_eq!(b.policy.consecutive_failures, Some(5));
    assert_eq!(b.policy.rate, None);
    assert_eq!(b.policy.open_for, 10 * S);
    assert_eq!(b.policy.max_open_for, 300 * S);
    assert_eq!((b.policy.probes, b.policy.successes_to_close), (1, 1));
    assert_eq!(b.policy.probe_timeout, 30 * S);
    assert_eq!(b.fallback, None);
    assert!(!Config::parse(br#"{"circuit_breakers": [{"name": "a"}]}"#)
        .unwrap()
        .is_passthrough());
}

#[test]
fn accepts_the_design_example() {
    let b = parse(
        r#"{"name": "catalog", "match": {"path_prefix": "/catalog/"},
            "failure": {"statuses": ["5xx", 429, "408"], "resets": false, "slow_call": "2s"},
            "trip": {"consecutive_failures": 5, "failure_rate": 0.5, "window": "10s", "min_calls": 20},
            "open_for": "10s", "max_open_for": "5m",
            "half_open": {"probes": 3, "successes_to_close": 2, "probe_timeout": "5s"},
            "fallback": {"status": 200, "body": "{}", "headers": {"Content-Type": "application/json"}}}"#,
    )
    .unwrap();
    assert_eq!(
        b.policy.failure.statuses,
        vec![
            StatusMatch::Class(5),
            StatusMatch::Code(429),
            StatusMatch::Code(408)
        ]
    );
    assert_eq!(b.policy.failure.slow_call, Some(2 * S));
    let rate = b.policy.rate.unwrap();
    assert_eq!(
        (rate.failure_rate_ppm, rate.window, rate.min_calls),
        (500_000, 10 * S, 20)
    );
    assert_eq!(b.policy.consecutive_failures, Some(5));
    assert_eq!((b.policy.probes, b.policy.successes_to_close), (3, 2));
    let fallback = b.fallback.unwrap();
    assert_eq!(fallback.status, 200);
    assert_eq!(
        fallback.headers,
        vec![("content-type".into(), "application/json".into())]
    );
}

#[test]
fn a_rate_alone_sets_no_consecutive_trip() {
    let b = parse(r#"{"name": "a", "trip": {"failure_rate": 1}}"#).unwrap();
    assert_eq!(b.policy.consecutive_failures, None);
    assert_eq!(b.policy.rate.unwrap().min_calls, 20);
}

#[test]
fn a_long_open_for_raises_the_default_maximum() {
    let b = parse(r#"{"name": "a", "open_for": "10m"}"#).unwrap();
    assert_eq!(b.policy.max_open_for, 600 * S);
}

#[test]
fn successes_to_close_defaults_to_probes() {
    let b = parse(r#"{"name": "a", "half_open": {"probes": 4}}"#).unwrap();
    assert_eq!(b.policy.successes_to_close, 4);
}

#[test]
fn refuses_a_missing_name() {
    assert!(refused("{}").contains("missing field `name`"));
}

#[test]
fn refuses_a_bad_name() {
    assert_eq!(
        refused(r#"{"name": "a b"}"#),
        r#"circuit_breakers[0].name: "a b" must be 1 to 64 letters, digits, '_' or '-'"#
    );
}

#[test]
fn refuses_a_duplicate_name() {
    assert_eq!(
        refused(r#"{"name": "a"}, {"name": "a"}"#),
        r#"circuit_breakers[1].name: "a" is used by another breaker"#
    );
}

#[test]
fn refuses_unknown_fields() {
    assert!(refused(r#"{"name": "a", "trip": {"slow_call_rate": 0.5}}"#)
        .contains("unknown field `slow_call_rate`"));
}

#[test]
fn refuses_a_key() {
    assert!(refused(r#"{"name": "a", "key": ["authority"]}"#)
        .starts_with("circuit_breakers[0].key: keyed breakers are not supported yet"));
    assert!(parse(r#"{"name": "a", "key": []}"#).is_ok());
}

#[test]
fn refuses_a_bad_match() {
    assert!(refused(r#"{"name": "a", "match": {"path_prefix": "x"}}"#)
        .starts_with("circuit_breakers[0].match.path_prefix:"));
}

#[test]
fn refuses_bad_statuses() {
    for (status, shown) in [
        (r#""6xx""#, r#""6xx""#),
        ("99", "99"),
        ("600", "600"),
        (r#""5x""#, r#""5x""#),
        ("true", "true"),
        ("-1", "-1"),
        ("500.5", "500.5"),
        ("null", "null"),
        ("[500]", "a list"),
        (r#"{"code": 500}"#, "an object"),
        (r#""5\"x\n""#, r#""5\"x\n""#),
    ] {
        assert_eq!(
            refused(&format!(r#"{{"name": "a", "failure": {{"statuses": ["5xx", {status}]}}}}"#)),
            format!(
                "circuit_breakers[0].failure.statuses[1]: {shown} is not a status 100 to 599 or a class \"1xx\" to \"5xx\""
            )
        );
    }
}

#[test]
fn refuses_empty_statuses() {
    assert!(refused(r#"{"name": "a", "failure": {"statuses": []}}"#)
        .starts_with("circuit_breakers[0].failure.statuses: must list at least one"));
}

#[test]
fn refuses_a_zero_slow_call() {
    assert_eq!(
        refused(r#"{"name": "a", "failure": {"slow_call": "0ms"}}"#),
        "circuit_breakers[0].failure.slow_call: must be greater than 0"
    );
}

#[test]
fn refuses_zero_consecutive_failures() {
    assert_eq!(
        refused(r#"{"name": "a", "trip": {"consecutive_failures": 0}}"#),
        "circuit_breakers[0].trip.consecutive_failures: must be at least 1"
    );
}

#[test]
fn refuses_a_failure_rate_out_of_range() {
    for rate in ["0", "1.5", "-0.1"] {
        assert_eq!(
            refused(&format!(
                r#"{{"name": "a", "trip": {{"failure_rate": {rate}}}}}"#
            )),
            format!(
                "circuit_breakers[0].trip.failure_rate: {} must be greater than 0 and at most 1",
                rate.parse::<f64>().unwrap()
            )
        );
    }
}

#[test]
fn refuses_zero_min_calls() {
    assert_eq!(
        refused(r#"{"name": "a", "trip": {"failure_rate": 0.5, "min_calls": 0}}"#),
        "circuit_breakers[0].trip.min_calls: must be at least 1"
    );
}

#[test]
fn refuses_a_tiny_window() {
    assert_eq!(
        refused(r#"{"name": "a", "trip": {"failure_rate": 0.5, "window": "5ms"}}"#),
        "circuit_breakers[0].trip.window: must be at least 10ms"
    );
}

#[test]
fn refuses_window_without_a_rate() {
    assert_eq!(
        refused(r#"{"name": "a", "trip": {"window": "10s"}}"#),
        "circuit_breakers[0].trip.window: only applies with failure_rate"
    );
    assert_eq!(
        refused(r#"{"name": "a", "trip": {"min_calls": 3}}"#),
        "circuit_breakers[0].trip.min_calls: only applies with failure_rate"
    );
}

#[test]
fn refuses_a_zero_open_for() {
    assert_eq!(
        refused(r#"{"name": "a", "open_for": "0s"}"#),
        "circuit_breakers[0].open_for: must be greater than 0"
    );
}

#[test]
fn refuses_max_open_for_below_open_for() {
    assert_eq!(
        refused(r#"{"name": "a", "open_for": "10s", "max_open_for": "5s"}"#),
        "circuit_breakers[0].max_open_for: must be at least open_for"
    );
}

#[test]
fn refuses_probes_out_of_range() {
    for probes in [0, 101] {
        assert_eq!(
            refused(&format!(
                r#"{{"name": "a", "half_open": {{"probes": {probes}}}}}"#
            )),
            "circuit_breakers[0].half_open.probes: must be 1 to 100"
        );
    }
}

#[test]
fn refuses_zero_successes_to_close() {
    assert_eq!(
        refused(r#"{"name": "a", "half_open": {"successes_to_close": 0}}"#),
        "circuit_breakers[0].half_open.successes_to_close: must be at least 1"
    );
}

#[test]
fn refuses_a_zero_probe_timeout() {
    assert_eq!(
        refused(r#"{"name": "a", "half_open": {"probe_timeout": "0s"}}"#),
        "circuit_breakers[0].half_open.probe_timeout: must be greater than 0"
    );
}

#[test]
fn refuses_a_fallback_status_out_of_range() {
    for status in [199, 600] {
        assert_eq!(
            refused(&format!(
                r#"{{"name": "a", "fallback": {{"status": {status}}}}}"#
            )),
            format!("circuit_breakers[0].fallback.status: {status} must be 200 to 599")
        );
    }
}

#[test]
fn refuses_a_bad_fallback_header() {
    assert_eq!(
        refused(r#"{"name": "a", "fallback": {"headers": {"a b": "x"}}}"#),
        r#"circuit_breakers[0].fallback.headers.a b: "a b" is not a header name"#
    );
    assert_eq!(
        refused(r#"{"name": "a", "fallback": {"headers": {"x": "a\r\nb"}}}"#),
        "circuit_breakers[0].fallback.headers.x: must be visible characters, with no control characters and no spaces at either end"
    );
}

#[test]
fn a_route_name_match_asks_for_the_route_name() {
    let config =
        Config::parse(br#"{"circuit_breakers": [{"name": "a", "match": {"route_name": "r"}}]}"#)
            .unwrap();
    assert!(config.needs.route_name);
}

#[test]
fn refuses_control_characters_and_padding_in_a_fallback_header() {
    for value in [r#"a\u0001b"#, r#"a\u007fb"#, " padded", r#"padded\t"#] {
        let json = format!(r#"{{"name": "a", "fallback": {{"headers": {{"x": "{value}"}}}}}}"#);
        assert_eq!(
            refused(&json),
            "circuit_breakers[0].fallback.headers.x: must be visible characters, with no control characters and no spaces at either end",
            "{value}"
        );
    }
    assert!(Config::parse(br#"{"circuit_breakers": [{"name": "a", "fallback": {"headers": {"x": "a b\tc \u00e9"}}}]}"#).is_ok());
}

#[test]
fn refuses_a_fallback_header_given_twice() {
    assert_eq!(
        refused(r#"{"name": "a", "fallback": {"headers": {"X-A": "1", "x-a": "2"}}}"#),
        "circuit_breakers[0].fallback.headers.x-a: is given twice (names are case-insensitive)"
    );
}

#[test]
fn refuses_a_body_on_a_204_or_304_fallback() {
    assert_eq!(
        refused(r#"{"name": "a", "fallback": {"status": 204, "body": "x"}}"#),
        "circuit_breakers[0].fallback.body: a 204 answer has no body"
    );
    assert_eq!(
        refused(r#"{"name": "a", "fallback": {"status": 304, "body": "x"}}"#),
        "circuit_breakers[0].fallback.body: a 304 answer has no body"
    );
}
