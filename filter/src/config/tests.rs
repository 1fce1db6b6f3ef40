//! One test per refusal, with the JSON inline.

use super::schema::RawMatch;
use super::validate;
use super::*;
use crate::core::key::KeyPart;
use crate::core::matcher::HeaderCondition;

fn refused(json: &str) -> String {
    Config::parse(json.as_bytes()).unwrap_err().to_string()
}

fn matcher(json: &str) -> Result<crate::core::matcher::Matcher, String> {
    let raw: RawMatch = serde_json::from_str(json).map_err(|e| e.to_string())?;
    validate::matcher(Some(&raw), &JsonPath::root().field("match")).map_err(|e| e.to_string())
}

fn key(json: &str) -> Result<Vec<KeyPart>, String> {
    let raw: Vec<String> = serde_json::from_str(json).unwrap();
    validate::key(&raw, &JsonPath::root().field("key")).map_err(|e| e.to_string())
}

#[test]
fn empty_input_and_empty_object_pass_through() {
    assert_eq!(Config::parse(b""), Ok(Config::default()));
    assert_eq!(Config::parse(b" \n"), Ok(Config::default()));
    assert_eq!(Config::parse(b"{}"), Ok(Config::default()));
    assert!(Config::default().is_passthrough());
}

#[test]
fn accepts_both_client_ip_sources() {
    let peer = Config::parse(br#"{"client_ip": {"from": "peer"}}"#).unwrap();
    assert_eq!(peer.client_ip, ClientIpSource::Peer);
    let xff =
        Config::parse(br#"{"client_ip": {"from": "x-forwarded-for", "trusted_hops": 2}}"#).unwrap();
    assert_eq!(
        xff.client_ip,
        ClientIpSource::XForwardedFor { trusted_hops: 2 }
    );
}

#[test]
fn refuses_malformed_json() {
    assert_eq!(
        refused("{"),
        "EOF while parsing an object at line 1 column 1"
    );
}

#[test]
fn refuses_trailing_data() {
    assert_eq!(refused("{} {}"), "trailing characters at line 1 column 4");
}

#[test]
fn refuses_unknown_top_level_fields() {
    let message = refused(r#"{"rate_limit": []}"#);
    assert!(
        message.starts_with("rate_limit: unknown field `rate_limit`"),
        "{message}"
    );
}

#[test]
fn refuses_unknown_fields_inside_client_ip() {
    let message = refused(r#"{"client_ip": {"from": "peer", "hops": 1}}"#);
    assert!(
        message.starts_with("client_ip.hops: unknown field `hops`"),
        "{message}"
    );
}

#[test]
fn refuses_zero_trusted_hops() {
    assert_eq!(
        refused(r#"{"client_ip": {"from": "x-forwarded-for", "trusted_hops": 0}}"#),
        "client_ip.trusted_hops: must be at least 1"
    );
}

#[test]
fn refuses_forwarded_for_without_trusted_hops() {
    assert_eq!(
        refused(r#"{"client_ip": {"from": "x-forwarded-for"}}"#),
        "client_ip.trusted_hops: is required with \"from\": \"x-forwarded-for\""
    );
}

#[test]
fn refuses_trusted_hops_with_peer() {
    assert_eq!(
        refused(r#"{"client_ip": {"from": "peer", "trusted_hops": 1}}"#),
        "client_ip.trusted_hops: only applies with \"from\": \"x-forwarded-for\""
    );
}

#[test]
fn refuses_an_unknown_client_ip_source() {
    assert_eq!(
        refused(r#"{"client_ip": {"from": "x-real-ip"}}"#),
        "client_ip.from: \"x-real-ip\" is not one of \"peer\", \"x-forwarded-for\""
    );
}

#[test]
fn refuses_negative_trusted_hops() {
    let message = refused(r#"{"client_ip": {"from": "x-forwarded-for", "trusted_hops": -1}}"#);
    assert!(
        message.starts_with("client_ip.trusted_hops: invalid value: integer `-1`"),
        "{message}"
    );
}

#[test]
fn match_headers_are_read_like_a_sorted_map() {
    // Sorted by name, and the last of a repeated name wins.
    let m = matcher(r#"{"headers": {"b": "1", "a": true, "b": "2", "c": "3"}}"#).unwrap();
    assert_eq!(
        m.headers,
        vec![
            ("a".into(), HeaderCondition::Present),
            ("b".into(), HeaderCondition::Exact(b"2".to_vec())),
            ("c".into(), HeaderCondition::Exact(b"3".to_vec())),
        ]
    );
    assert!(matcher(r#"{"headers": ["a"]}"#)
        .unwrap_err()
        .starts_with("invalid type: sequence, expected a map"));
}

#[test]
fn match_accepts_every_condition() {
    let m = matcher(
        r#"{"path_prefix": "/api/", "path_exact": "/api/x", "methods": ["GET"],
            "headers": {"X-Tier": "gold", "x-key": true}, "route_name": "api"}"#,
    )
    .unwrap();
    assert_eq!(m.path_prefix.as_deref(), Some(&b"/api/"[..]));
    assert_eq!(m.methods, vec![b"GET".to_vec()]);
    assert_eq!(
        m.headers,
        vec![
            ("x-tier".into(), HeaderCondition::Exact(b"gold".to_vec())),
            ("x-key".into(), HeaderCondition::Present),
        ]
    );
}

#[test]
fn match_refuses_a_relative_path_prefix() {
    assert_eq!(
        matcher(r#"{"path_prefix": "api"}"#).unwrap_err(),
        "match.path_prefix: \"api\" must start with \"/\""
    );
}

#[test]
fn match_refuses_a_query_in_path_exact() {
    assert_eq!(
        matcher(r#"{"path_exact": "/a?b=1"}"#).unwrap_err(),
        "match.path_exact: \"/a?b=1\" must not contain \"?\": paths are matched without the query string"
    );
}

#[test]
fn match_refuses_an_empty_method_list() {
    assert_eq!(
        matcher(r#"{"methods": []}"#).unwrap_err(),
        "match.methods: must list at least one method, or be left out"
    );
}

#[test]
fn match_refuses_a_method_with_spaces() {
    assert_eq!(
        matcher(r#"{"methods": ["GET", "BAD ONE"]}"#).unwrap_err(),
        "match.methods[1]: \"BAD ONE\" is not an HTTP method (methods are upper case, as clients send them)"
    );
}

#[test]
fn match_refuses_an_invalid_header_name() {
    assert_eq!(
        matcher(r#"{"headers": {"x y": true}}"#).unwrap_err(),
        "match.headers.x y: \"x y\" is not a header name"
    );
}

#[test]
fn match_refuses_false_as_a_header_condition() {
    let message = matcher(r#"{"headers": {"x-a": false}}"#).unwrap_err();
    assert!(message.starts_with("false is not a condition"), "{message}");
}

#[test]
fn match_refuses_an_empty_route_name() {
    assert_eq!(
        matcher(r#"{"route_name": ""}"#).unwrap_err(),
        "match.route_name: must not be empty"
    );
}

#[test]
fn match_refuses_unknown_fields() {
    assert!(matcher(r#"{"prefix": "/"}"#)
        .unwrap_err()
        .starts_with("unknown field `prefix`"));
}

#[test]
fn key_accepts_every_part() {
    let parts = key(r#"["client_ip", "header:X-Api-Key", "query:user", "path", "method", "authority", "route_name"]"#).unwrap();
    assert_eq!(
        parts,
        vec![
            KeyPart::ClientIp,
            KeyPart::Header("x-api-key".into()),
            KeyPart::Query("user".into()),
            KeyPart::Path,
            KeyPart::Method,
            KeyPart::Authority,
            KeyPart::RouteName,
        ]
    );
    assert_eq!(key("[]").unwrap(), vec![]);
}

#[test]
fn key_refuses_an_unknown_part() {
    assert_eq!(
        key(r#"["path", "cookie:session"]"#).unwrap_err(),
        "key[1]: \"cookie:session\" is not one of client_ip, header:NAME, query:NAME, path, method, authority, route_name"
    );
}

#[test]
fn key_refuses_a_header_part_without_a_name() {
    assert_eq!(
        key(r#"["header:"]"#).unwrap_err(),
        "key[0]: \"\" is not a header name"
    );
}

#[test]
fn key_refuses_a_query_part_without_a_name() {
    assert_eq!(
        key(r#"["query:"]"#).unwrap_err(),
        "key[0]: query: needs a parameter name"
    );
}

#[test]
fn name_refuses_dots_and_empty_names() {
    let path = JsonPath::root().field("rate_limits").index(0).field("name");
    assert_eq!(validate::name("tenant-a_1", &path), Ok("tenant-a_1".into()));
    assert_eq!(
        validate::name("a.b", &path).unwrap_err().to_string(),
        "rate_limits[0].name: \"a.b\" must be 1 to 64 letters, digits, '_' or '-'"
    );
    assert!(validate::name("", &path).is_err());
    assert!(validate::name(&"x".repeat(65), &path).is_err());
}

#[test]
fn match_refuses_a_lower_case_method() {
    assert_eq!(
        matcher(r#"{"methods": ["get"]}"#).unwrap_err(),
        "match.methods[0]: \"get\" is not an HTTP method (methods are upper case, as clients send them)"
    );
}

#[test]
fn refuses_an_array_where_an_object_belongs() {
    assert_eq!(refused("[]"), "the configuration must be a JSON object");
    assert_eq!(refused(r#"{"cache": []}"#), "cache: expected a JSON object");
}
