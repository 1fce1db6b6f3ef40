//! `circuit_breakers`: the entries as written and their checks.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::duration;
use super::error::{ConfigError, JsonPath};
use super::schema::{RawMap, RawMatch};
use super::validate;
use crate::core::breaker::{Breaker, FailurePolicy, Fallback, Policy, RateTrip, StatusMatch};

/// `consecutive_failures` when neither trip condition is given.
pub const DEFAULT_CONSECUTIVE_FAILURES: u32 = 5;
/// `open_for` when not given.
pub const DEFAULT_OPEN_FOR: Duration = Duration::from_secs(10);
/// `max_open_for` when not given (or `open_for`, if that is longer).
pub const DEFAULT_MAX_OPEN_FOR: Duration = Duration::from_secs(300);
/// `trip.window` when not given.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
/// `trip.min_calls` when not given.
pub const DEFAULT_MIN_CALLS: u32 = 20;
/// `half_open.probe_timeout` when not given.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// The most probes a breaker may let through at once.
pub const MAX_PROBES: u32 = 100;

/// One `circuit_breakers` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    /// Required, unique.
    pub name: String,
    /// The requests it guards.
    #[serde(rename = "match")]
    pub matcher: Option<RawMatch>,
    /// Keyed breakers: refused (not supported yet) unless empty.
    pub key: Option<Vec<String>>,
    /// What counts as a failure.
    pub failure: Option<RawFailure>,
    /// When it trips.
    pub trip: Option<RawTrip>,
    /// The first open period.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub open_for: Option<Duration>,
    /// The longest open period.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub max_open_for: Option<Duration>,
    /// Probing.
    pub half_open: Option<RawHalfOpen>,
    /// The answer while open.
    pub fallback: Option<RawFallback>,
}

/// `failure`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFailure {
    /// `"5xx"`, `"4xx"`, `503`, ...
    pub statuses: Option<Vec<RawStatus>>,
    /// Resets, connect failures and timeouts count.
    pub resets: Option<bool>,
    /// Slower answers count.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub slow_call: Option<Duration>,
}

/// A `failure.statuses` entry as written: any JSON value, kept as much as
/// the check needs (a `serde_json::Value` here would bring JSON printing
/// into the plugin just for this message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawStatus {
    /// A non-negative integer.
    Number(u64),
    /// A string.
    Text(String),
    /// Anything else, as the refusal shows it.
    Other(String),
}

impl<'de> Deserialize<'de> for RawStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StatusVisitor)
    }
}

struct StatusVisitor;

impl<'de> Visitor<'de> for StatusVisitor {
    type Value = RawStatus;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a status or a status class")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<RawStatus, E> {
        Ok(RawStatus::Number(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<RawStatus, E> {
        Ok(match u64::try_from(value) {
            Ok(value) => RawStatus::Number(value),
            Err(_) => RawStatus::Other(value.to_string()),
        })
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<RawStatus, E> {
        Ok(RawStatus::Other(value.to_string()))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<RawStatus, E> {
        Ok(RawStatus::Text(value.to_owned()))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<RawStatus, E> {
        Ok(RawStatus::Other(value.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<RawStatus, E> {
        Ok(RawStatus::Other("null".to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawStatus, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawStatus::Other("a list".to_owned()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawStatus, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(RawStatus::Other("an object".to_owned()))
    }
}

/// `text` as a JSON string literal, for messages.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `trip`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrip {
    /// Failures in a row.
    pub consecutive_failures: Option<u32>,
    /// Failure rate in (0, 1].
    pub failure_rate: Option<f64>,
    /// The rate window.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub window: Option<Duration>,
    /// Calls needed before the rate counts.
    pub min_calls: Option<u32>,
}

/// `half_open`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHalfOpen {
    /// Probes in flight at once.
    pub probes: Option<u32>,
    /// Successes that close the breaker.
    pub successes_to_close: Option<u32>,
    /// When an unreported probe's slot is reclaimed.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub probe_timeout: Option<Duration>,
}

/// `fallback`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFallback {
    /// 200 to 599, default 503.
    pub status: Option<u32>,
    /// The body.
    pub body: Option<String>,
    /// Response headers.
    pub headers: Option<RawMap<String>>,
}

/// Checks the whole `circuit_breakers` list.
pub fn breakers(raw: &[RawBreaker], path: &JsonPath) -> Result<Vec<Breaker>, ConfigError> {
    let mut checked: Vec<Breaker> = Vec::with_capacity(raw.len());
    for (i, entry) in raw.iter().enumerate() {
        let entry_path = path.index(i);
        let breaker = breaker(entry, &entry_path)?;
        // A scan: lists are short, and a hash set would bring hashing code
        // into the plugin for this one check.
        if checked.iter().any(|other| other.name == breaker.name) {
            return Err(ConfigError::at(
                &entry_path.field("name"),
                format!("{:?} is used by another breaker", breaker.name),
            ));
        }
        checked.push(breaker);
    }
    Ok(checked)
}

fn breaker(raw: &RawBreaker, path: &JsonPath) -> Result<Breaker, ConfigError> {
    let name = validate::name(&raw.name, &path.field("name"))?;
    let matcher = validate::matcher(raw.matcher.as_ref(), &path.field("match"))?;
    if raw.key.as_ref().is_some_and(|key| !key.is_empty()) {
        return Err(ConfigError::at(
            &path.field("key"),
            "keyed breakers are not supported yet: leave key out and give each route its own breaker with match",
        ));
    }
    let failure = failure(raw.failure.as_ref(), &path.field("failure"))?;
    let (consecutive_failures, rate) = trip(raw.trip.as_ref(), &path.field("trip"))?;

    let open_for = raw.open_for.unwrap_or(DEFAULT_OPEN_FOR);
    if open_for.is_zero() {
        return Err(ConfigError::at(
            &path.field("open_for"),
            "must be greater than 0",
        ));
    }
    let max_open_for = match raw.max_open_for {
        Some(max) if max < open_for => {
            return Err(ConfigError::at(
                &path.field("max_open_for"),
                "must be at least open_for",
            ))
        }
        Some(max) => max,
        None => DEFAULT_MAX_OPEN_FOR.max(open_for),
    };

    let half_open = raw.half_open.as_ref();
    let half_path = path.field("half_open");
    let probes = half_open.and_then(|h| h.probes).unwrap_or(1);
    if probes == 0 || probes > MAX_PROBES {
        return Err(ConfigError::at(
            &half_path.field("probes"),
            format!("must be 1 to {MAX_PROBES}"),
        ));
    }
    let successes_to_close = half_open
        .and_then(|h| h.successes_to_close)
        .unwrap_or(probes);
    if successes_to_close == 0 {
        return Err(ConfigError::at(
            &half_path.field("successes_to_close"),
            "must be at least 1",
        ));
    }
    let probe_timeout = half_open
        .and_then(|h| h.probe_timeout)
        .unwrap_or(DEFAULT_PROBE_TIMEOUT);
    if probe_timeout.is_zero() {
        return Err(ConfigError::at(
            &half_path.field("probe_timeout"),
            "must be greater than 0",
        ));
    }

    let fallback = match &raw.fallback {
        Some(raw_fallback) => Some(fallback(raw_fallback, &path.field("fallback"))?),
        None => None,
    };
    Ok(Breaker {
        name,
        matcher,
        policy: Policy {
            failure,
            consecutive_failures,
            rate,
            open_for: nanos(open_for),
            max_open_for: nanos(max_open_for),
            probes: u8::try_from(probes).unwrap_or(u8::MAX),
            successes_to_close,
            probe_timeout: nanos(probe_timeout),
        },
        fallback,
    })
}

fn failure(raw: Option<&RawFailure>, path: &JsonPath) -> Result<FailurePolicy, ConfigError> {
    let default = RawFailure::default();
    let raw = raw.unwrap_or(&default);
    let statuses = match &raw.statuses {
        None => vec![StatusMatch::Class(5)],
        Some(list) if list.is_empty() => {
            return Err(ConfigError::at(
                &path.field("statuses"),
                "must list at least one status or class (the default is [\"5xx\"])",
            ))
        }
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, value)| status(value, &path.field("statuses").index(i)))
            .collect::<Result<_, _>>()?,
    };
    if raw.slow_call.is_some_and(|d| d.is_zero()) {
        return Err(ConfigError::at(
            &path.field("slow_call"),
            "must be greater than 0",
        ));
    }
    Ok(FailurePolicy {
        statuses,
        resets: raw.resets.unwrap_or(true),
        slow_call: raw.slow_call.map(nanos),
    })
}

fn status(value: &RawStatus, path: &JsonPath) -> Result<StatusMatch, ConfigError> {
    let invalid = || {
        let shown = match value {
            RawStatus::Number(n) => n.to_string(),
            RawStatus::Text(text) => quoted(text),
            RawStatus::Other(shown) => shown.clone(),
        };
        ConfigError::at(
            path,
            format!("{shown} is not a status 100 to 599 or a class \"1xx\" to \"5xx\""),
        )
    };
    let code = match value {
        RawStatus::Number(n) => *n,
        RawStatus::Text(text) => match text.as_bytes() {
            [class @ b'1'..=b'5', b'x' | b'X', b'x' | b'X'] => {
                return Ok(StatusMatch::Class(class - b'0'))
            }
            _ => text.parse().map_err(|_| invalid())?,
        },
        RawStatus::Other(_) => return Err(invalid()),
    };
    match u16::try_from(code) {
        Ok(code @ 100..=599) => Ok(StatusMatch::Code(code)),
        _ => Err(invalid()),
    }
}

fn trip(
    raw: Option<&RawTrip>,
    path: &JsonPath,
) -> Result<(Option<u32>, Option<RateTrip>), ConfigError> {
    let default = RawTrip::default();
    let raw = raw.unwrap_or(&default);
    if raw.consecutive_failures == Some(0) {
        return Err(ConfigError::at(
            &path.field("consecutive_failures"),
            "must be at least 1",
        ));
    }
    let rate = match raw.failure_rate {
        None => {
            for (field, present) in [
                ("window", raw.window.is_some()),
                ("min_calls", raw.min_calls.is_some()),
            ] {
                if present {
                    return Err(ConfigError::at(
                        &path.field(field),
                        "only applies with failure_rate",
                    ));
                }
            }
            None
        }
        Some(rate) if !(rate > 0.0 && rate <= 1.0) => {
            return Err(ConfigError::at(
                &path.field("failure_rate"),
                format!("{rate} must be greater than 0 and at most 1"),
            ))
        }
        Some(rate) => {
            let window = raw.window.unwrap_or(DEFAULT_WINDOW);
            if window < Duration::from_millis(10) {
                return Err(ConfigError::at(
                    &path.field("window"),
                    "must be at least 10ms",
                ));
            }
            let min_calls = raw.min_calls.unwrap_or(DEFAULT_MIN_CALLS);
            if min_calls == 0 {
                return Err(ConfigError::at(
                    &path.field("min_calls"),
                    "must be at least 1",
                ));
            }
            // Rounded to millionths, at least one.
            let ppm = ((rate * 1_000_000.0).round() as u32).clamp(1, 1_000_000);
            Some(RateTrip {
                failure_rate_ppm: ppm,
                window: nanos(window),
                min_calls,
            })
        }
    };
    let consecutive = match (raw.consecutive_failures, &rate) {
        (None, None) => Some(DEFAULT_CONSECUTIVE_FAILURES),
        (given, _) => given,
    };
    Ok((consecutive, rate))
}

fn fallback(raw: &RawFallback, path: &JsonPath) -> Result<Fallback, ConfigError> {
    let status = raw.status.unwrap_or(503);
    if !(200..=599).contains(&status) {
        return Err(ConfigError::at(
            &path.field("status"),
            format!("{status} must be 200 to 599"),
        ));
    }
    let mut headers = Vec::new();
    for (name, value) in raw.headers.iter().flatten() {
        let header_path = path.field("headers").field(name);
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid_name {
            return Err(ConfigError::at(
                &header_path,
                format!("{name:?} is not a header name"),
            ));
        }
        // RFC 9110 §5.5: visible characters, spaces and tabs inside; no
        // control characters (HTTP/2 peers reset the stream on them).
        let valid_value = value.bytes().all(|b| b == b'\t' || b == b' ' || b >= 0x21)
            && !value.bytes().any(|b| b == 0x7f)
            && !value.starts_with([' ', '\t'])
            && !value.ends_with([' ', '\t']);
        if !valid_value {
            return Err(ConfigError::at(
                &header_path,
                "must be visible characters, with no control characters and no spaces at either end",
            ));
        }
        let name = name.to_ascii_lowercase();
        if headers.iter().any(|(seen, _)| *seen == name) {
            return Err(ConfigError::at(
                &header_path,
                "is given twice (names are case-insensitive)",
            ));
        }
        headers.push((name, value.clone()));
    }
    let has_body = raw.body.as_ref().is_some_and(|b| !b.is_empty());
    if has_body && (status == 204 || status == 304) {
        return Err(ConfigError::at(
            &path.field("body"),
            format!("a {status} answer has no body"),
        ));
    }
    Ok(Fallback {
        status,
        body: raw
            .body
            .clone()
            .filter(|b| !b.is_empty())
            .map(String::into_bytes),
        headers,
    })
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
