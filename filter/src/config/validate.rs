//! Turns the configuration as written into checked types, with the JSON
//! path of the first value that is wrong.

use super::error::{ConfigError, JsonPath};
use super::ratelimit;
use super::schema::{RawClientIp, RawConfig, RawHeaderCondition, RawMatch};
use super::{Config, Needs};
use crate::core::key::KeyPart;
use crate::core::matcher::{HeaderCondition, Matcher};
use crate::core::ratelimit::RateLimits;
use crate::core::request::ClientIpSource;

/// Checks a whole configuration.
pub fn config(raw: RawConfig) -> Result<Config, ConfigError> {
    let root = JsonPath::root();
    let client_ip = match &raw.client_ip {
        Some(raw_ip) => client_ip(raw_ip, &root.field("client_ip"))?,
        None => ClientIpSource::Peer,
    };
    let rate_limits = RateLimits {
        rules: ratelimit::rules(
            raw.rate_limits.as_deref().unwrap_or_default(),
            &root.field("rate_limits"),
        )?,
    };
    let circuit_breakers = super::breaker::breakers(
        raw.circuit_breakers.as_deref().unwrap_or_default(),
        &root.field("circuit_breakers"),
    )?;
    let cache = match &raw.cache {
        Some(raw_cache) => Some(super::cache::validate(raw_cache, &root.field("cache"))?),
        None => None,
    };
    let mut needs = Needs::default();
    for rule in &rate_limits.rules {
        needs.matcher(&rule.matcher);
        needs.key(&rule.key);
    }
    for breaker in &circuit_breakers {
        needs.matcher(&breaker.matcher);
    }
    if let Some(cache) = &cache {
        // Cache-Control, validators, Authorization and whatever a stored
        // `Vary` names.
        needs.matcher(&cache.matcher);
        needs.all_headers = true;
    }
    if needs.client_ip && matches!(client_ip, ClientIpSource::XForwardedFor { .. }) {
        // Envoy keeps one X-Forwarded-For entry, repeated lines joined.
        needs.header("x-forwarded-for");
    }
    Ok(Config {
        client_ip,
        needs,
        rate_limits,
        circuit_breakers,
        cache,
    })
}

/// Checks `client_ip`.
pub fn client_ip(raw: &RawClientIp, path: &JsonPath) -> Result<ClientIpSource, ConfigError> {
    match (raw.from.as_str(), raw.trusted_hops) {
        ("peer", None) => Ok(ClientIpSource::Peer),
        ("peer", Some(_)) => Err(ConfigError::at(
            &path.field("trusted_hops"),
            "only applies with \"from\": \"x-forwarded-for\"",
        )),
        ("x-forwarded-for", Some(0)) => Err(ConfigError::at(
            &path.field("trusted_hops"),
            "must be at least 1",
        )),
        ("x-forwarded-for", Some(trusted_hops)) => {
            Ok(ClientIpSource::XForwardedFor { trusted_hops })
        }
        ("x-forwarded-for", None) => Err(ConfigError::at(
            &path.field("trusted_hops"),
            "is required with \"from\": \"x-forwarded-for\"",
        )),
        (other, _) => Err(ConfigError::at(
            &path.field("from"),
            format!("{other:?} is not one of \"peer\", \"x-forwarded-for\""),
        )),
    }
}

/// Checks a `match` block; `None` matches every request.
pub fn matcher(raw: Option<&RawMatch>, path: &JsonPath) -> Result<Matcher, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Matcher::default());
    };
    let path_field = |name: &str, value: &Option<String>| -> Result<Option<Vec<u8>>, ConfigError> {
        match value {
            Some(p) if !p.starts_with('/') => Err(ConfigError::at(
                &path.field(name),
                format!("{p:?} must start with \"/\""),
            )),
            Some(p) if p.contains('?') => Err(ConfigError::at(
                &path.field(name),
                format!("{p:?} must not contain \"?\": paths are matched without the query string"),
            )),
            Some(p) => Ok(Some(p.clone().into_bytes())),
            None => Ok(None),
        }
    };
    let mut methods = Vec::new();
    if let Some(raw_methods) = &raw.methods {
        let methods_path = path.field("methods");
        if raw_methods.is_empty() {
            return Err(ConfigError::at(
                &methods_path,
                "must list at least one method, or be left out",
            ));
        }
        for (i, method) in raw_methods.iter().enumerate() {
            if !is_token(method) || method.bytes().any(|b| b.is_ascii_lowercase()) {
                return Err(ConfigError::at(
                    &methods_path.index(i),
                    format!("{method:?} is not an HTTP method (methods are upper case, as clients send them)"),
                ));
            }
            methods.push(method.clone().into_bytes());
        }
    }
    let mut headers = Vec::new();
    for (name, condition) in raw.headers.iter().flatten() {
        let header_path = path.field("headers").field(name);
        let name = header_name(name, &header_path)?;
        let condition = match condition {
            RawHeaderCondition::Present => HeaderCondition::Present,
            RawHeaderCondition::Exact(value) => HeaderCondition::Exact(value.clone().into_bytes()),
        };
        headers.push((name, condition));
    }
    let route_name = match &raw.route_name {
        Some(name) if name.is_empty() => {
            return Err(ConfigError::at(
                &path.field("route_name"),
                "must not be empty",
            ))
        }
        other => other.clone().map(String::into_bytes),
    };
    Ok(Matcher {
        path_prefix: path_field("path_prefix", &raw.path_prefix)?,
        path_exact: path_field("path_exact", &raw.path_exact)?,
        methods,
        headers,
        route_name,
    })
}

/// Checks a `key` list: `client_ip`, `header:NAME`, `query:NAME`, `path`,
/// `method`, `authority`, `route_name`.
pub fn key(raw: &[String], path: &JsonPath) -> Result<Vec<KeyPart>, ConfigError> {
    raw.iter()
        .enumerate()
        .map(|(i, part)| {
            let part_path = path.index(i);
            let parsed = match part.split_once(':') {
                Some(("header", name)) => KeyPart::Header(header_name(name, &part_path)?),
                Some(("query", "")) => return Err(ConfigError::at(&part_path, "query: needs a parameter name")),
                Some(("query", name)) => KeyPart::Query(name.to_owned()),
                None if part == "client_ip" => KeyPart::ClientIp,
                None if part == "path" => KeyPart::Path,
                None if part == "method" => KeyPart::Method,
                None if part == "authority" => KeyPart::Authority,
                None if part == "route_name" => KeyPart::RouteName,
                _ => {
                    return Err(ConfigError::at(
                        &part_path,
                        format!(
                            "{part:?} is not one of client_ip, header:NAME, query:NAME, path, method, authority, route_name"
                        ),
                    ))
                }
            };
            Ok(parsed)
        })
        .collect()
}

/// A header name as Envoy presents it: a lowercase token.
fn header_name(name: &str, path: &JsonPath) -> Result<String, ConfigError> {
    if !is_token(name) {
        return Err(ConfigError::at(
            path,
            format!("{name:?} is not a header name"),
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// RFC 9110 §5.6.2 `token`.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks a rule, breaker or cache `name`: it becomes part of stats names
/// and shared-data keys, so it is 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn name(raw: &str, path: &JsonPath) -> Result<String, ConfigError> {
    let valid = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(ConfigError::at(
            path,
            format!("{raw:?} must be 1 to 64 letters, digits, '_' or '-'"),
        ))
    }
}
