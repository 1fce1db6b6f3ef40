//! The configuration as written: serde types that refuse unknown fields.
//! [`super::validate`] turns them into types that cannot be wrong.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
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
    pub headers: Option<RawMap<RawHeaderCondition>>,
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

/// A JSON object with string keys, as a `BTreeMap` would read it (entries
/// sorted by key, the last of repeated keys wins) but kept in a `Vec`: a
/// tree map brings a lot of code into the plugin for a few headers.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RawMap<V>(pub Vec<(String, V)>);

impl<'a, V> IntoIterator for &'a RawMap<V> {
    type Item = &'a (String, V);
    type IntoIter = std::slice::Iter<'a, (String, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for RawMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

struct MapVisitor<V>(PhantomData<V>);

impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
    type Value = RawMap<V>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries: Vec<(String, V)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, V>()? {
            match entries.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
                Ok(at) => {
                    if let Some(entry) = entries.get_mut(at) {
                        entry.1 = value;
                    }
                }
                Err(at) => entries.insert(at, (key, value)),
            }
        }
        Ok(RawMap(entries))
    }
}
