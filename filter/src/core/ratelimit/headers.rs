//! The answer's header fields and body, as draft-ietf-httpapi-ratelimit-headers
//! writes them (structured fields):
//!
//! - `ratelimit-policy: "<rule>";q=<limit>;w=<period in seconds>`
//! - `ratelimit: "<rule>";r=<remaining>;t=<seconds until whole again>`
//!
//! Rule names are letters, digits, `_` and `-` (checked by the
//! configuration), so they need no escaping in a string item or in JSON.

use super::algorithm::{whole_seconds, NANOS_PER_SEC};
use super::{Quota, Rule};

/// The `ratelimit-policy` value of `rule`. The window is the period in
/// whole seconds, rounded up.
pub fn policy(rule: &Rule) -> String {
    format!(
        "\"{}\";q={};w={}",
        rule.name,
        rule.policy.limit,
        whole_seconds(rule.policy.period)
    )
}

/// The `ratelimit` value for `quota` of `rule`. `t` is rounded up, and 0
/// only when the quota is already whole.
pub fn ratelimit(rule: &Rule, quota: &Quota) -> String {
    format!(
        "\"{}\";r={};t={}",
        rule.name,
        quota.remaining,
        quota.reset.div_ceil(NANOS_PER_SEC)
    )
}

/// The `retry-after` value: whole seconds, rounded up, at least 1.
pub fn retry_after(nanos: u64) -> String {
    whole_seconds(nanos).to_string()
}

/// The body of a 429.
pub fn body(rule: &Rule, retry_after_nanos: u64) -> String {
    format!(
        "{{\"error\":\"rate limited\",\"rule\":\"{}\",\"retry_after\":{}}}\n",
        rule.name,
        whole_seconds(retry_after_nanos)
    )
}
