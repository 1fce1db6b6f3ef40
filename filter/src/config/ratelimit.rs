//! `rate_limits`: the raw rules as written, and their checks.

use std::time::Duration;

use serde::Deserialize;

use super::duration;
use super::error::{ConfigError, JsonPath};
use super::schema::RawMatch;
use super::validate;
use crate::core::ratelimit::{Algorithm, Mode, Policy, Rule};

/// The default bound on tracked keys per rule.
pub const DEFAULT_MAX_KEYS: u32 = 10_000;

/// The largest `max_keys`: each slot is one shared-data entry of about
/// 100 bytes in every Envoy.
pub const MOST_KEYS: u32 = 1_000_000;

/// The largest `limit`, `burst` and `cost`.
pub const MOST_TOKENS: u64 = 1_000_000_000;

/// One `rate_limits` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// Required, unique.
    pub name: String,
    /// Which requests the rule applies to; every request when absent.
    #[serde(rename = "match")]
    pub matcher: Option<RawMatch>,
    /// Parts of the key; one shared bucket when absent or empty.
    pub key: Option<Vec<String>>,
    /// `token_bucket` (default), `fixed_window` or `sliding_window`.
    pub algorithm: Option<String>,
    /// Requests per period.
    pub limit: u64,
    /// The period.
    #[serde(deserialize_with = "duration::deserialize")]
    pub period: Duration,
    /// Token bucket only; defaults to `limit`.
    pub burst: Option<u64>,
    /// What one request spends; default 1.
    pub cost: Option<u64>,
    /// `enforce` (default) or `shadow`.
    pub mode: Option<String>,
    /// Slots in the rule's table; default 10000.
    pub max_keys: Option<u32>,
}

/// Checks every rule; names must be unique.
pub fn rules(raw: &[RawRateLimit], path: &JsonPath) -> Result<Vec<Rule>, ConfigError> {
    let mut checked: Vec<Rule> = Vec::with_capacity(raw.len());
    for (i, raw_rule) in raw.iter().enumerate() {
        let rule = rule(raw_rule, &path.index(i))?;
        if let Some(first) = checked.iter().position(|r| r.name == rule.name) {
            return Err(ConfigError::at(
                &path.index(i).field("name"),
                format!(
                    "{:?} is already the name of rate_limits[{first}]",
                    rule.name
                ),
            ));
        }
        checked.push(rule);
    }
    Ok(checked)
}

/// Checks one rule.
pub fn rule(raw: &RawRateLimit, path: &JsonPath) -> Result<Rule, ConfigError> {
    let name = validate::name(&raw.name, &path.field("name"))?;
    let matcher = validate::matcher(raw.matcher.as_ref(), &path.field("match"))?;
    let key = validate::key(raw.key.as_deref().unwrap_or_default(), &path.field("key"))?;
    let limit = tokens(raw.limit, &path.field("limit"))?;
    let period = period(raw.period, &path.field("period"))?;

    let algorithm = match raw.algorithm.as_deref() {
        None | Some("token_bucket") => {
            let burst = match raw.burst {
                Some(burst) => tokens(burst, &path.field("burst"))?,
                None => limit,
            };
            // The time an empty bucket takes to refill must stay bounded.
            let refill = u128::from(burst) * u128::from(period) / u128::from(limit);
            if refill > duration::LONGEST.as_nanos() {
                return Err(ConfigError::at(
                    &path.field("burst"),
                    format!("{burst} tokens at this rate take more than a year to refill"),
                ));
            }
            Algorithm::TokenBucket { burst }
        }
        Some(other @ ("fixed_window" | "sliding_window")) => {
            if raw.burst.is_some() {
                return Err(ConfigError::at(
                    &path.field("burst"),
                    format!("only applies to \"token_bucket\", not {other:?}"),
                ));
            }
            if other == "fixed_window" {
                Algorithm::FixedWindow
            } else {
                Algorithm::SlidingWindow
            }
        }
        Some(other) => {
            return Err(ConfigError::at(
                &path.field("algorithm"),
                format!(
                    "{other:?} is not one of \"token_bucket\", \"fixed_window\", \"sliding_window\""
                ),
            ))
        }
    };

    let capacity = match algorithm {
        Algorithm::TokenBucket { burst } => burst,
        _ => limit,
    };
    let cost = match raw.cost {
        Some(cost) => tokens(cost, &path.field("cost"))?,
        None => 1,
    };
    if cost > capacity {
        return Err(ConfigError::at(
            &path.field("cost"),
            format!("{cost} is more than the {capacity} a key can ever hold: every request would be refused"),
        ));
    }
    let mode = match raw.mode.as_deref() {
        None | Some("enforce") => Mode::Enforce,
        Some("shadow") => Mode::Shadow,
        Some(other) => {
            return Err(ConfigError::at(
                &path.field("mode"),
                format!("{other:?} is not one of \"enforce\", \"shadow\""),
            ))
        }
    };
    let max_keys = raw.max_keys.unwrap_or(DEFAULT_MAX_KEYS);
    if !(1..=MOST_KEYS).contains(&max_keys) {
        return Err(ConfigError::at(
            &path.field("max_keys"),
            format!("{max_keys} is not between 1 and {MOST_KEYS}"),
        ));
    }

    Ok(Rule {
        name,
        matcher,
        key,
        policy: Policy {
            algorithm,
            limit,
            period,
        },
        cost,
        mode,
        max_keys,
    })
}

/// A count of requests or tokens: 1 to [`MOST_TOKENS`].
fn tokens(value: u64, path: &JsonPath) -> Result<u64, ConfigError> {
    match value {
        0 => Err(ConfigError::at(path, "must be greater than 0")),
        v if v > MOST_TOKENS => Err(ConfigError::at(
            path,
            format!("{v} is more than {MOST_TOKENS}"),
        )),
        v => Ok(v),
    }
}

/// A period in nanoseconds: 1 ms up to [`duration::LONGEST`] (366 days).
fn period(value: Duration, path: &JsonPath) -> Result<u64, ConfigError> {
    if value < Duration::from_millis(1) {
        return Err(ConfigError::at(path, "must be at least 1ms"));
    }
    u64::try_from(value.as_nanos()).map_err(|_| ConfigError::at(path, "is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::core::key::KeyPart;

    fn refused(rule: &str) -> String {
        let json = format!(r#"{{"rate_limits": [{rule}]}}"#);
        Config::parse(json.as_bytes()).unwrap_err().to_string()
    }

    fn accepted(rule: &str) -> Rule {
        let json = format!(r#"{{"rate_limits": [{rule}]}}"#);
        Config::parse(json.as_bytes())
            .unwrap()
            .rate_limits
            .rules
            .remove(0)
    }

    #[test]
    fn fills_in_the_defaults() {
        let rule = accepted(r#"{"name": "r", "limit": 100, "period": "1s"}"#);
        assert_eq!(
            rule.policy,
            Policy {
                algorithm: Algorithm::TokenBucket { burst: 100 },
                limit: 100,
                period: 1_000_000_000,
            }
        );
        assert_eq!(
            (rule.cost, rule.mode, rule.max_keys),
            (1, Mode::Enforce, 10_000)
        );
        assert!(rule.key.is_empty());
    }

    #[test]
    fn accepts_every_field() {
        let rule = accepted(
            r#"{"name": "per-api-key", "match": {"path_prefix": "/api/"},
                "key": ["header:x-api-key", "client_ip"], "algorithm": "sliding_window",
                "limit": 5, "period": "10s", "cost": 2, "mode": "shadow", "max_keys": 50}"#,
        );
        assert_eq!(rule.policy.algorithm, Algorithm::SlidingWindow);
        assert_eq!(
            rule.key,
            vec![KeyPart::Header("x-api-key".into()), KeyPart::ClientIp]
        );
        assert_eq!((rule.cost, rule.mode, rule.max_keys), (2, Mode::Shadow, 50));
    }

    #[test]
    fn refuses_a_zero_limit() {
        assert_eq!(
            refused(r#"{"name": "r", "limit": 0, "period": "1s"}"#),
            "rate_limits[0].limit: must be greater than 0"
        );
    }

    #[test]
    fn refuses_a_huge_limit() {
        assert_eq!(
            refused(r#"{"name": "r", "limit": 1000000001, "period": "1s"}"#),
            "rate_limits[0].limit: 1000000001 is more than 1000000000"
        );
    }

    #[test]
    fn refuses_a_zero_period() {
        assert_eq!(
            refused(r#"{"name": "r", "limit": 1, "period": "0s"}"#),
            "rate_limits[0].period: must be at least 1ms"
        );
    }

    #[test]
    fn refuses_a_period_over_a_year() {
        assert_eq!(
            refused(r#"{"name": "r", "limit": 1, "period": "8785h"}"#),
            "rate_limits[0].period: \"8785h\" is longer than 366 days"
        );
    }

    #[test]
    fn refuses_a_malformed_period() {
        let message = refused(r#"{"name": "r", "limit": 1, "period": "1.5s"}"#);
        assert!(
            message.starts_with("rate_limits[0].period: \"1.5s\" is not a duration"),
            "{message}"
        );
    }

    #[test]
    fn refuses_a_missing_limit() {
        let message = refused(r#"{"name": "r", "period": "1s"}"#);
        assert!(message.contains("missing field `limit`"), "{message}");
    }

    #[test]
    fn refuses_a_missing_name() {
        let message = refused(r#"{"limit": 1, "period": "1s"}"#);
        assert!(message.contains("missing field `name`"), "{message}");
    }

    #[test]
    fn refuses_an_invalid_name() {
        assert_eq!(
            refused(r#"{"name": "a b", "limit": 1, "period": "1s"}"#),
            "rate_limits[0].name: \"a b\" must be 1 to 64 letters, digits, '_' or '-'"
        );
    }

    #[test]
    fn refuses_a_duplicate_name() {
        assert_eq!(
            refused(
                r#"{"name": "r", "limit": 1, "period": "1s"},
                   {"name": "r", "limit": 2, "period": "1s"}"#
            ),
            "rate_limits[1].name: \"r\" is already the name of rate_limits[0]"
        );
    }

    #[test]
    fn refuses_an_unknown_algorithm() {
        assert_eq!(
            refused(r#"{"name": "r", "algorithm": "leaky", "limit": 1, "period": "1s"}"#),
            "rate_limits[0].algorithm: \"leaky\" is not one of \"token_bucket\", \"fixed_window\", \"sliding_window\""
        );
    }

    #[test]
    fn refuses_burst_on_a_window() {
        assert_eq!(
            refused(
                r#"{"name": "r", "algorithm": "fixed_window", "limit": 1, "period": "1s", "burst": 2}"#
            ),
            "rate_limits[0].burst: only applies to \"token_bucket\", not \"fixed_window\""
        );
    }

    #[test]
    fn refuses_a_zero_burst() {
        assert_eq!(
            refused(r#"{"name": "r", "limit": 1, "period": "1s", "burst": 0}"#),
            "rate_limits[0].burst: must be greater than 0"
        );
    }

    #[test]
    fn refuses_a_burst_that_takes_over_a_year_to_refill() {
        assert_eq!(
            refused(r#"{"name": "r", "limit": 1, "period": "1h", "burst": 10000}"#),
            "rate_limits[0].burst: 10000 tokens at this rate take more than a year to refill"
        );
    }

    #[test]
    fn refuses_a_zero_cost() {
        assert_eq!(
            refused(r#"{"name": "r", "limit": 1, "period": "1s", "cost": 0}"#),
            "rate_limits[0].cost: must be greater than 0"
        );
    }

    #[test]
    fn refuses_a_cost_above_the_capacity() {
        assert_eq!(
            refused(r#"{"name": "r", "limit": 10, "period": "1s", "burst": 3, "cost": 4}"#),
            "rate_limits[0].cost: 4 is more than the 3 a key can ever hold: every request would be refused"
        );
    }

    #[test]
    fn refuses_an_unknown_mode() {
        assert_eq!(
            refused(r#"{"name": "r", "limit": 1, "period": "1s", "mode": "dry_run"}"#),
            "rate_limits[0].mode: \"dry_run\" is not one of \"enforce\", \"shadow\""
        );
    }

    #[test]
    fn refuses_zero_max_keys() {
        assert_eq!(
            refused(r#"{"name": "r", "limit": 1, "period": "1s", "max_keys": 0}"#),
            "rate_limits[0].max_keys: 0 is not between 1 and 1000000"
        );
    }

    #[test]
    fn refuses_an_unknown_field() {
        let message = refused(r#"{"name": "r", "limit": 1, "period": "1s", "burts": 2}"#);
        assert!(
            message.starts_with("rate_limits[0].burts: unknown field `burts`"),
            "{message}"
        );
    }

    #[test]
    fn refuses_a_bad_key_part_with_its_path() {
        assert_eq!(
            refused(r#"{"name": "r", "limit": 1, "period": "1s", "key": ["cookie"]}"#),
            "rate_limits[0].key[0]: \"cookie\" is not one of client_ip, header:NAME, query:NAME, path, method, authority, route_name"
        );
    }

    #[test]
    fn refuses_a_bad_match_with_its_path() {
        assert_eq!(
            refused(
                r#"{"name": "r", "limit": 1, "period": "1s", "match": {"path_prefix": "api"}}"#
            ),
            "rate_limits[0].match.path_prefix: \"api\" must start with \"/\""
        );
    }

    #[test]
    fn records_the_facts_the_rules_need() {
        let config = Config::parse(
            br#"{"rate_limits": [
                {"name": "a", "limit": 1, "period": "1s", "key": ["client_ip"]},
                {"name": "b", "limit": 1, "period": "1s", "match": {"route_name": "api"}}]}"#,
        )
        .unwrap();
        assert!(config.needs.client_ip && config.needs.route_name);
        assert!(!config.is_passthrough());
        let empty = Config::parse(br#"{"rate_limits": []}"#).unwrap();
        assert!(empty.is_passthrough());
    }
}
