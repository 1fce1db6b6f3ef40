//! The plugin configuration: JSON in, checked types out.
//!
//! Unknown fields are errors, durations are strings (`"250ms"`, `"1s"`,
//! `"5m"`, `"1h"`), and every refusal names the JSON path and the reason.

pub mod breaker;
pub mod cache;
pub mod duration;
pub mod error;
mod locate;
pub mod ratelimit;
pub mod schema;
pub mod validate;

pub use error::{ConfigError, JsonPath};

use crate::core::cache::CacheConfig;
use crate::core::key::KeyPart;
use crate::core::matcher::Matcher;
use crate::core::ratelimit::RateLimits;
use crate::core::request::ClientIpSource;

/// A checked plugin configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Where the client address comes from.
    pub client_ip: ClientIpSource,
    /// Which request facts the configured features read, so the filter asks
    /// Envoy for nothing else.
    pub needs: Needs,
    /// The rate limit rules, in configuration order.
    pub rate_limits: RateLimits,
    /// `circuit_breakers`, in configuration order.
    pub circuit_breakers: Vec<crate::core::breaker::Breaker>,
    /// The response cache, when configured.
    pub cache: Option<CacheConfig>,
}

/// The request facts the configured features read, worked out once from
/// every `match` and `key`, so the filter asks Envoy for nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Some `match` or `key` reads `:method`.
    pub method: bool,
    /// Some `match` or `key` reads `:path` (the path or the query).
    pub path: bool,
    /// Some `key` reads `:authority`.
    pub authority: bool,
    /// Some feature looks at every value of any header: a `match` on
    /// headers, or the cache.
    pub all_headers: bool,
    /// Regular headers read for their first value only (lowercase, each
    /// once): `header:` keys and `X-Forwarded-For` for `client_ip`.
    pub header_names: Vec<String>,
    /// A `match` or `key` uses Envoy's route name.
    pub route_name: bool,
    /// A `key` uses `client_ip`.
    pub client_ip: bool,
}

impl Needs {
    /// Adds what `matcher` looks at.
    pub fn matcher(&mut self, matcher: &Matcher) {
        self.path |= matcher.path_prefix.is_some() || matcher.path_exact.is_some();
        self.method |= !matcher.methods.is_empty();
        self.all_headers |= !matcher.headers.is_empty();
        self.route_name |= matcher.route_name.is_some();
    }

    /// Adds what a `key` reads.
    pub fn key(&mut self, parts: &[KeyPart]) {
        for part in parts {
            match part {
                KeyPart::ClientIp => self.client_ip = true,
                KeyPart::Header(name) => self.header(name),
                KeyPart::Query(_) | KeyPart::Path => self.path = true,
                KeyPart::Method => self.method = true,
                KeyPart::Authority => self.authority = true,
                KeyPart::RouteName => self.route_name = true,
            }
        }
    }

    /// Adds a header read for its first value.
    pub fn header(&mut self, name: &str) {
        if !self.header_names.iter().any(|known| known == name) {
            self.header_names.push(name.to_owned());
        }
    }
}

impl Config {
    /// Parses and checks the plugin configuration. Empty input (Envoy passes
    /// none when `configuration` is unset) means `{}`.
    pub fn parse(json: &[u8]) -> Result<Self, ConfigError> {
        if json.iter().all(u8::is_ascii_whitespace) {
            return validate::config(schema::RawConfig::default());
        }
        if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ConfigError {
                path: String::new(),
                reason: "the configuration must be a JSON object".to_owned(),
            });
        }
        let raw = serde_json::from_slice(json).map_err(|err| ConfigError {
            path: locate::path_at(json, err.line(), err.column()),
            reason: reason(&err),
        })?;
        validate::config(raw)
    }

    /// True when no feature is configured: the filter then passes every
    /// request through without looking at it.
    pub fn is_passthrough(&self) -> bool {
        self.rate_limits.rules.is_empty()
            && self.circuit_breakers.is_empty()
            && self.cache.is_none()
    }
}

/// The reason to give for a serde_json error: an array or other value
/// where a section's object belongs is said so (serde would name our
/// internal types); otherwise serde's message, see [`without_position`].
fn reason(err: &serde_json::Error) -> String {
    let message = without_position(err);
    if message.contains("expected struct Raw") {
        "expected a JSON object".to_owned()
    } else {
        message
    }
}

/// serde_json's message without its "at line L column C" suffix when the
/// JSON path says where; malformed JSON keeps its position.
fn without_position(err: &serde_json::Error) -> String {
    let message = err.to_string();
    if err.is_syntax() || err.is_eof() {
        return message;
    }
    // A byte scan rather than `rfind`: the reverse string searcher would be
    // in the plugin for this one call.
    const SUFFIX: &[u8] = b" at line ";
    match message
        .as_bytes()
        .windows(SUFFIX.len())
        .rposition(|w| w == SUFFIX)
    {
        Some(at) => message.get(..at).unwrap_or(&message).to_owned(),
        None => message,
    }
}

#[cfg(test)]
mod tests;
