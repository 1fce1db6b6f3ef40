//! What a finished request means to a breaker: success, failure or neutral.

use std::fmt;

use super::FailurePolicy;

/// A `failure.statuses` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMatch {
    /// A whole class: `5` for `"5xx"`.
    Class(u8),
    /// One status code, 100 to 599.
    Code(u16),
}

impl StatusMatch {
    fn matches(self, status: u16) -> bool {
        match self {
            StatusMatch::Class(class) => status / 100 == u16::from(class),
            StatusMatch::Code(code) => status == code,
        }
    }
}

/// How a request ended, for a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered well.
    Success,
    /// The upstream failed.
    Failure(FailureKind),
    /// Says nothing about the upstream (4xx, client gone, a local reply).
    Neutral,
}

/// Which failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The upstream answered a status listed in `failure.statuses`.
    Status(u16),
    /// A reset, connect failure or timeout (Envoy's response flags).
    Reset(u64),
    /// The upstream answered slower than `failure.slow_call`.
    Slow,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::Status(status) => write!(f, "status {status}"),
            FailureKind::Reset(flags) => {
                let names: Vec<&str> = FLAG_NAMES
                    .iter()
                    .filter(|(bit, _)| flags & bit != 0)
                    .map(|(_, name)| *name)
                    .collect();
                write!(f, "{} (response flags {flags:#x})", names.join(", "))
            }
            FailureKind::Slow => f.write_str("slow call"),
        }
    }
}

/// What Envoy tells the filter about a finished request in `on_log`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// `response.code`; 0 when no response was sent.
    pub status: u16,
    /// `response.code_details` is `via_upstream`: the upstream answered.
    pub via_upstream: bool,
    /// `response.flags`, Envoy's response flag bit set.
    pub flags: u64,
    /// From the request headers to the response headers (or to the end, if
    /// none came), ns.
    pub duration: u64,
    /// This filter answered the request itself (rate limit, open breaker,
    /// cache): never counts.
    pub local_reply: bool,
}

/// Envoy response flags that mean the upstream failed to answer: timeout
/// (UT 0x4), remote reset (UR 0x10), connect failure (UF 0x20), connection
/// termination (UC 0x40), overflow (UO 0x80), retry limit exceeded
/// (URX 0x8000), max stream duration (UMSDR 0x80000), upstream protocol
/// error (UPE 0x800000).
pub const UPSTREAM_FAILURE_FLAGS: u64 =
    0x4 | 0x10 | 0x20 | 0x40 | 0x80 | 0x8000 | 0x80000 | 0x80_0000;

/// Names of the [`UPSTREAM_FAILURE_FLAGS`], for logs.
const FLAG_NAMES: [(u64, &str); 8] = [
    (0x4, "upstream timeout"),
    (0x10, "upstream reset"),
    (0x20, "upstream connect failure"),
    (0x40, "upstream connection terminated"),
    (0x80, "upstream overflow"),
    (0x8000, "retry limit exceeded"),
    (0x80000, "upstream max stream duration"),
    (0x80_0000, "upstream protocol error"),
];

/// Envoy response flags that mean the client went away: downstream
/// connection termination (DC 0x4000) and downstream protocol error
/// (DPE 0x40000). A request with one of these and no upstream answer is
/// neutral, never a failure.
pub const CLIENT_GONE_FLAGS: u64 = 0x4000 | 0x40000;

/// Classifies a finished request. The order matters:
///
/// 1. this filter's own local replies are neutral;
/// 2. an upstream answer (`via_upstream`) is a failure when its status is
///    listed or it came slower than `slow_call`, else neutral for 4xx (not
///    listed) and a success otherwise;
/// 3. without an upstream answer, the client going away is neutral;
/// 4. upstream resets, connect failures and timeouts are failures when
///    `failure.resets` is on;
/// 5. anything else (another filter's local reply) is neutral.
pub fn classify(policy: &FailurePolicy, response: &Response) -> Outcome {
    if response.local_reply {
        return Outcome::Neutral;
    }
    if response.via_upstream {
        let status = response.status;
        if policy.statuses.iter().any(|m| m.matches(status)) {
            return Outcome::Failure(FailureKind::Status(status));
        }
        if policy
            .slow_call
            .is_some_and(|limit| response.duration > limit)
        {
            return Outcome::Failure(FailureKind::Slow);
        }
        if (400..500).contains(&status) {
            return Outcome::Neutral;
        }
        return Outcome::Success;
    }
    if response.flags & CLIENT_GONE_FLAGS != 0 {
        return Outcome::Neutral;
    }
    if policy.resets && response.flags & UPSTREAM_FAILURE_FLAGS != 0 {
        return Outcome::Failure(FailureKind::Reset(response.flags));
    }
    Outcome::Neutral
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> FailurePolicy {
        FailurePolicy {
            statuses: vec![StatusMatch::Class(5)],
            resets: true,
            slow_call: Some(200_000_000),
        }
    }

    fn upstream(status: u16) -> Response {
        Response {
            status,
            via_upstream: true,
            ..Response::default()
        }
    }

    #[test]
    fn listed_statuses_fail_and_4xx_is_neutral() {
        assert_eq!(
            classify(&policy(), &upstream(503)),
            Outcome::Failure(FailureKind::Status(503))
        );
        for status in [400, 404, 429, 499] {
            assert_eq!(classify(&policy(), &upstream(status)), Outcome::Neutral);
        }
        for status in [200, 204, 301, 304] {
            assert_eq!(classify(&policy(), &upstream(status)), Outcome::Success);
        }
    }

    #[test]
    fn a_listed_4xx_counts() {
        let mut policy = policy();
        policy.statuses = vec![StatusMatch::Class(4), StatusMatch::Code(502)];
        assert_eq!(
            classify(&policy, &upstream(404)),
            Outcome::Failure(FailureKind::Status(404))
        );
        assert_eq!(
            classify(&policy, &upstream(502)),
            Outcome::Failure(FailureKind::Status(502))
        );
        assert_eq!(classify(&policy, &upstream(503)), Outcome::Success);
    }

    #[test]
    fn slow_answers_fail() {
        let mut slow = upstream(200);
        slow.duration = 400_000_000;
        assert_eq!(
            classify(&policy(), &slow),
            Outcome::Failure(FailureKind::Slow)
        );
        slow.duration = 200_000_000;
        assert_eq!(classify(&policy(), &slow), Outcome::Success);
    }

    #[test]
    fn resets_and_timeouts_fail_unless_turned_off() {
        for flags in [0x4, 0x10, 0x20, 0x40] {
            let response = Response {
                status: 503,
                flags,
                ..Response::default()
            };
            assert_eq!(
                classify(&policy(), &response),
                Outcome::Failure(FailureKind::Reset(flags))
            );
            let mut off = policy();
            off.resets = false;
            assert_eq!(classify(&off, &response), Outcome::Neutral);
        }
    }

    #[test]
    fn names_the_flags_in_logs() {
        assert_eq!(
            FailureKind::Reset(0x44).to_string(),
            "upstream timeout, upstream connection terminated (response flags 0x44)"
        );
    }

    #[test]
    fn local_replies_and_client_aborts_are_neutral() {
        let mut own = upstream(503);
        own.local_reply = true;
        assert_eq!(classify(&policy(), &own), Outcome::Neutral);
        let gone = Response {
            status: 0,
            flags: 0x4000 | 0x8,
            ..Response::default()
        };
        assert_eq!(classify(&policy(), &gone), Outcome::Neutral);
        let other_filter = Response {
            status: 403,
            ..Response::default()
        };
        assert_eq!(classify(&policy(), &other_filter), Outcome::Neutral);
    }
}
