//! The configuration as written: serde types that refuse unknown fields.
//! [`super::validate`] turns them into types that cannot be wrong.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// The whole plugin configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Where the client address comes from.
    pub client_ip: Option<RawClientIp>,
    /// Rate limit rules.
    pub rate_limits: Option<Vec<super::ratelimit::RawRateLimit>>,
    /// Circuit breakers.
    pub circuit_breakers: Option<Vec<super::breaker::RawBreaker>>,
    /// The response cache.
    pub cache: Option<super::cache::RawCache>,
}

/// `client_ip`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientIp {
    /// `peer` or `x-forwarded-for`.
    pub from: String,
    /// Required with `x-forwarded-for`, at least 1.
    pub trusted_hops: Option<u32>,
}

/// `match`, shared by every section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    /// The path (without query) starts with this.
    pub path_prefix: Option<String>,
    /// The path (without query) equals this.
    pub path_exact: Option<String>,
    /// Allowed methods.
    pub methods: Option<Vec<String>>,
    /// Header name to an exact value, or `true` for presence.
    pub headers: Option<BTreeMap<String, RawHeaderCondition>>,
    /// Envoy's route name.
    pub route_name: Option<String>,
}

/// A header condition: a string for an exact value, `true` for presence.
#[derive(Debug, PartialEq, Eq)]
pub enum RawHeaderCondition {
    /// The value must equal this.
    Exact(String),
    /// The header must be present.
    Present,
}

impl<'de> Deserialize<'de> for RawHeaderCondition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(HeaderConditionVisitor)
    }
}

struct HeaderConditionVisitor;

impl Visitor<'_> for HeaderConditionVisitor {
    type Value = RawHeaderCondition;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string (exact value) or true (present)")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(RawHeaderCondition::Exact(value.to_owned()))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        if value {
            Ok(RawHeaderCondition::Present)
        } else {
            Err(E::custom(
                "false is not a condition: use true for presence or a string for an exact value",
            ))
        }
    }
}
