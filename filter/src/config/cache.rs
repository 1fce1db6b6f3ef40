//! `cache`: the raw serde type and its validation into [`CacheConfig`].

use std::time::Duration;

use serde::Deserialize;

use super::duration;
use super::error::{ConfigError, JsonPath};
use super::schema::RawMatch;
use super::validate;
use crate::core::cache::CacheConfig;

/// Upper bound on `max_entries`: 1,000,000 slots of shared data.
const MAX_ENTRIES_LIMIT: u32 = 1_000_000;

/// Upper bound on `max_entry_bytes` (64 MiB): every entry is copied into a
/// worker's memory on a hit, so larger ones defeat the purpose.
const MAX_ENTRY_BYTES_LIMIT: u32 = 64 << 20;

/// `cache` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// Label in metrics and shared-data keys; default `"default"`.
    pub name: Option<String>,
    /// Which requests may be cached; default every GET and HEAD.
    #[serde(rename = "match")]
    pub matcher: Option<RawMatch>,
    /// Slots; default 10000.
    pub max_entries: Option<u32>,
    /// Largest stored entry (headers and body); default 1 MiB.
    pub max_entry_bytes: Option<u32>,
    /// Freshness of cacheable 200s without explicit freshness; default 0s.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub default_ttl: Option<Duration>,
    /// How long past freshness a stored answer may replace an error; default 0s.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub stale_if_error: Option<Duration>,
    /// Whether an open breaker may answer with a stale entry; default true.
    pub serve_stale_when_open: Option<bool>,
}

/// Checks `cache`.
pub fn validate(raw: &RawCache, path: &JsonPath) -> Result<CacheConfig, ConfigError> {
    let defaults = CacheConfig::default();
    let name = match &raw.name {
        Some(name) => validate::name(name, &path.field("name"))?,
        None => defaults.name.clone(),
    };
    let max_entries = match raw.max_entries {
        Some(n) if n == 0 || n > MAX_ENTRIES_LIMIT => {
            return Err(ConfigError::at(
                &path.field("max_entries"),
                format!("{n} is not between 1 and {MAX_ENTRIES_LIMIT}"),
            ))
        }
        Some(n) => n,
        None => defaults.max_entries,
    };
    let max_entry_bytes = match raw.max_entry_bytes {
        Some(n) if n == 0 || n > MAX_ENTRY_BYTES_LIMIT => {
            return Err(ConfigError::at(
                &path.field("max_entry_bytes"),
                format!("{n} is not between 1 and {MAX_ENTRY_BYTES_LIMIT}"),
            ))
        }
        Some(n) => n,
        None => defaults.max_entry_bytes,
    };
    Ok(CacheConfig {
        name,
        matcher: validate::matcher(raw.matcher.as_ref(), &path.field("match"))?,
        max_entries,
        max_entry_bytes,
        default_ttl: raw.default_ttl.map_or(defaults.default_ttl, nanos),
        stale_if_error: raw.stale_if_error.map_or(defaults.stale_if_error, nanos),
        serve_stale_when_open: raw
            .serve_stale_when_open
            .unwrap_or(defaults.serve_stale_when_open),
    })
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::core::cache::CacheConfig;

    fn cache(json: &str) -> Result<CacheConfig, String> {
        Config::parse(json.as_bytes())
            .map(|c| c.cache.unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_empty_cache_takes_every_default() {
        let c = cache(r#"{"cache": {}}"#).unwrap();
        assert_eq!(c, CacheConfig::default());
        assert_eq!(c.name, "default");
        assert_eq!(c.max_entries, 10_000);
        assert_eq!(c.max_entry_bytes, 1 << 20);
        assert_eq!(c.default_ttl, 0);
        assert_eq!(c.stale_if_error, 0);
        assert!(c.serve_stale_when_open);
    }

    #[test]
    fn accepts_the_design_example() {
        let c = cache(
            r#"{"cache": {"match": {"path_prefix": "/catalog/"}, "max_entries": 10000,
                "max_entry_bytes": 1048576, "default_ttl": "0s", "stale_if_error": "5m",
                "serve_stale_when_open": true, "name": "catalog"}}"#,
        )
        .unwrap();
        assert_eq!(c.name, "catalog");
        assert_eq!(c.stale_if_error, 300_000_000_000);
        assert_eq!(c.matcher.path_prefix.as_deref(), Some(&b"/catalog/"[..]));
    }

    #[test]
    fn refuses_zero_entries() {
        assert_eq!(
            cache(r#"{"cache": {"max_entries": 0}}"#).unwrap_err(),
            "cache.max_entries: 0 is not between 1 and 1000000"
        );
    }

    #[test]
    fn refuses_too_many_entries() {
        assert_eq!(
            cache(r#"{"cache": {"max_entries": 1000001}}"#).unwrap_err(),
            "cache.max_entries: 1000001 is not between 1 and 1000000"
        );
    }

    #[test]
    fn refuses_zero_entry_bytes() {
        assert_eq!(
            cache(r#"{"cache": {"max_entry_bytes": 0}}"#).unwrap_err(),
            "cache.max_entry_bytes: 0 is not between 1 and 67108864"
        );
    }

    #[test]
    fn refuses_huge_entry_bytes() {
        assert_eq!(
            cache(r#"{"cache": {"max_entry_bytes": 67108865}}"#).unwrap_err(),
            "cache.max_entry_bytes: 67108865 is not between 1 and 67108864"
        );
    }

    #[test]
    fn refuses_a_bad_name() {
        assert_eq!(
            cache(r#"{"cache": {"name": "a b"}}"#).unwrap_err(),
            "cache.name: \"a b\" must be 1 to 64 letters, digits, '_' or '-'"
        );
    }

    #[test]
    fn refuses_a_bad_duration() {
        assert!(cache(r#"{"cache": {"default_ttl": "5"}}"#)
            .unwrap_err()
            .starts_with("cache.default_ttl: \"5\" is not a duration"));
        assert!(cache(r#"{"cache": {"stale_if_error": "1d"}}"#)
            .unwrap_err()
            .starts_with("cache.stale_if_error: \"1d\" is not a duration"));
    }

    #[test]
    fn refuses_a_bad_match() {
        assert_eq!(
            cache(r#"{"cache": {"match": {"path_prefix": "x"}}}"#).unwrap_err(),
            "cache.match.path_prefix: \"x\" must start with \"/\""
        );
    }

    #[test]
    fn refuses_unknown_fields() {
        let message = cache(r#"{"cache": {"ttl": "1s"}}"#).unwrap_err();
        assert!(message.contains("unknown field `ttl`"), "{message}");
    }

    #[test]
    fn refuses_a_non_boolean_serve_stale_when_open() {
        assert!(cache(r#"{"cache": {"serve_stale_when_open": "yes"}}"#)
            .unwrap_err()
            .starts_with("cache.serve_stale_when_open: invalid type"));
    }
}
