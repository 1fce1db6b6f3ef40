//! The cache's two decision points: a request arrives, its answer arrives.

use super::answer::{merge_304, stored_headers, Answer};
use super::directives::CacheControl;
use super::entry::Entry;
use super::policy::{self, Exchange, Headers, NotStored};
use super::table::{Stored, Table};
use super::vary::{self, Selection};
use super::{degrade, CacheConfig, Failure};
use crate::core::hash::KeyHasher;
use crate::core::request::RequestFacts;
use crate::core::store::{Store, StoreError};

const NANOS: u64 = 1_000_000_000;

/// Request headers that make a request conditional: when a client sends
/// its own, the cache adds none and leaves the upstream's `304` alone.
const CLIENT_CONDITIONALS: [&str; 5] = [
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "if-range",
];

/// Why a request went to the upstream; the RFC 9211 `fwd` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Not `GET` or `HEAD`.
    Method,
    /// A `Range` request: not handled by this cache.
    Range,
    /// Nothing stored for the URL.
    UriMiss,
    /// Something stored for the URL, for other `Vary` values.
    VaryMiss,
    /// The stored entry is stale (and, with a validator, is revalidated).
    Stale,
    /// The request's `no-cache` or `max-age` refused the stored entry.
    Request,
    /// The request has `Authorization` and the stored entry may not
    /// answer such requests.
    Authorization,
}

impl Reason {
    /// The RFC 9211 `fwd` parameter value.
    pub fn fwd(self) -> &'static str {
        match self {
            Self::Method => "method",
            Self::Range => "bypass",
            Self::UriMiss => "uri-miss",
            Self::VaryMiss => "vary-miss",
            Self::Stale => "stale",
            Self::Request | Self::Authorization => "request",
        }
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Outside the cache's `match`: untouched, no `cache-status`.
    Ignore,
    /// Not something this cache handles; forwarded, never stored.
    Bypass(Reason),
    /// A fresh stored answer: send it, do not forward.
    Hit(Answer),
    /// Forward; [`Cache::on_response`] handles the answer.
    Forward(Box<Forward>),
}

/// A forwarded request, remembered until its answer arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// Why it was forwarded.
    pub reason: Reason,
    /// Validators to add to the upstream request (`if-none-match`,
    /// `if-modified-since`) so that a `304` can refresh the entry.
    pub conditional: Vec<(&'static str, Vec<u8>)>,
    /// The stored entry for this request, stale or refused by the request:
    /// what a failure may fall back to.
    pub entry: Option<Entry>,
    /// Stored entries found corrupt on the way (ignored).
    pub corrupt: u32,
    key: Vec<u8>,
    fingerprint: u64,
    head: bool,
    request_cc: CacheControl,
    has_authorization: bool,
    request: RequestFacts,
    request_time: u64,
}

/// What to do with the upstream's answer.
#[derive(Debug)]
pub enum Responded {
    /// Send this instead of the upstream's answer.
    Replace {
        /// The reply.
        answer: Answer,
        /// `true` for a `304` that refreshed the entry, `false` for a stale
        /// entry standing in for an error.
        revalidated: bool,
        /// The refreshed entry's store, for a `304`.
        stored: Option<Stored>,
    },
    /// Let the upstream's answer through with this `cache-status`.
    Pass {
        /// The `cache-status` value to add.
        cache_status: String,
        /// Collect the body into this and store it when complete.
        pending: Option<Pending>,
        /// Why the answer will not be stored, if it will not.
        not_stored: Option<NotStored>,
    },
}

/// A response being stored: its body is collected chunk by chunk, up to
/// the entry size limit.
#[derive(Debug)]
pub struct Pending {
    entry: Entry,
    variant: u64,
    limit: usize,
    expected: Option<usize>,
    gave_up: bool,
}

impl Pending {
    /// Adds a body chunk; `false` once the body outgrew the limit (the
    /// collected bytes are freed and the rest passes by untouched).
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        if self.gave_up {
            return false;
        }
        if self.entry.body.len().saturating_add(chunk.len()) > self.limit {
            self.gave_up = true;
            self.entry.body = Vec::new();
            return false;
        }
        self.entry.body.extend_from_slice(chunk);
        true
    }

    /// The entry and its encoding once the body is complete: not given up
    /// and as long as `content-length` said. `None` otherwise.
    pub fn finish(self) -> Option<(Entry, Vec<u8>, u64)> {
        if self.gave_up || self.expected.is_some_and(|n| n != self.entry.body.len()) {
            return None;
        }
        let encoded = self.entry.encode()?;
        Some((self.entry, encoded, self.variant))
    }
}

/// One cache over a store, for one callback.
#[derive(Debug)]
pub struct Cache<'a, S: Store + ?Sized> {
    config: &'a CacheConfig,
    table: Table<'a, S>,
    hasher: &'a KeyHasher,
}

impl<'a, S: Store + ?Sized> Cache<'a, S> {
    /// The cache `config` over `store`, fingerprinting with `hasher`.
    pub fn new(config: &'a CacheConfig, store: &'a S, hasher: &'a KeyHasher) -> Self {
        Self {
            config,
            table: Table::new(store, &config.name, config.max_entries),
            hasher,
        }
    }

    /// The cache key: authority and path with query. The method is not
    /// part of it: a `HEAD` reads what a `GET` stored.
    fn key(request: &RequestFacts) -> Vec<u8> {
        let mut key = request.authority.clone();
        key.push(0);
        key.extend_from_slice(&request.path);
        key
    }

    fn domain(&self) -> String {
        format!("cache/{}", self.config.name)
    }

    /// A request arrived at `now`.
    pub fn on_request(&self, request: &RequestFacts, now: u64) -> Result<Plan, StoreError> {
        if !self.config.matcher.matches(request) {
            return Ok(Plan::Ignore);
        }
        let head = match request.method.as_slice() {
            b"GET" => false,
            b"HEAD" => true,
            _ => return Ok(Plan::Bypass(Reason::Method)),
        };
        if request.header_values("range").next().is_some() {
            return Ok(Plan::Bypass(Reason::Range));
        }

        let key = Self::key(request);
        let fingerprint = self.hasher.fingerprint(&self.domain(), &key).max(1);
        let found = self.table.find(fingerprint, &key, request)?;
        let mut forward = Forward {
            reason: Reason::UriMiss,
            conditional: Vec::new(),
            entry: None,
            corrupt: found.corrupt,
            key,
            fingerprint,
            head,
            request_cc: request_cache_control(request),
            has_authorization: request.header_values("authorization").next().is_some(),
            request: request.clone(),
            request_time: now,
        };
        let Some(entry) = &found.entry else {
            if found.other_variant {
                forward.reason = Reason::VaryMiss;
            }
            return Ok(Plan::Forward(Box::new(forward)));
        };

        // §3.5 applies to reuse too: an entry stored without the response's
        // permission for authenticated requests never answers one.
        if forward.has_authorization && !entry.freshness.shareable_with_auth {
            forward.reason = Reason::Authorization;
            return Ok(Plan::Forward(Box::new(forward)));
        }

        // §4: a fresh entry answers, unless the request's own no-cache or
        // max-age (§5.2.1.1, §5.2.1.4) asks for something newer.
        let age = entry.freshness.current_age(now);
        let request_refuses = forward.request_cc.no_cache
            || forward
                .request_cc
                .max_age
                .is_some_and(|max| age > max.saturating_mul(NANOS));
        if entry.freshness.is_fresh(now) && !request_refuses {
            self.table.touch(&found, now)?;
            let status = format!("floodgate; hit; ttl={}", entry.freshness.ttl_seconds(now));
            return Ok(Plan::Hit(Answer::from_entry(entry, now, head, &status)));
        }

        // §4.3.1: revalidate with the stored validators, unless the client
        // sent its own conditions (its 304 is then its own business).
        forward.reason = if request_refuses {
            Reason::Request
        } else {
            Reason::Stale
        };
        let client_conditional = CLIENT_CONDITIONALS
            .iter()
            .any(|name| request.header_values(name).next().is_some());
        if !head && !client_conditional {
            if let Some(etag) = policy::first(&entry.headers, "etag") {
                forward.conditional.push(("if-none-match", etag.to_vec()));
            }
            if let Some(modified) = policy::first(&entry.headers, "last-modified") {
                forward
                    .conditional
                    .push(("if-modified-since", modified.to_vec()));
            }
        }
        forward.entry = found.entry;
        Ok(Plan::Forward(Box::new(forward)))
    }

    /// The answer to a forwarded request arrived at `now` with `status` and
    /// `headers` (an Envoy-generated `503`/`504` for a refused connection,
    /// a reset or a timeout arrives here like an upstream's).
    pub fn on_response(
        &self,
        forward: &Forward,
        status: u16,
        headers: &Headers,
        now: u64,
    ) -> Result<Responded, StoreError> {
        let fwd = forward.reason.fwd();

        if let Some(entry) = &forward.entry {
            if let Some(detail) = degrade(self.config, entry, Failure::Status(status), now) {
                let cache_status = format!(
                    "floodgate; fwd={fwd}; fwd-status={status}; ttl={}; detail={detail}",
                    entry.freshness.ttl_seconds(now)
                );
                return Ok(Responded::Replace {
                    answer: Answer::from_entry(entry, now, forward.head, &cache_status),
                    revalidated: false,
                    stored: None,
                });
            }
            if status == 304 && !forward.conditional.is_empty() {
                return self.refresh(forward, entry, headers, now);
            }
        }

        let pass = |pending: Option<Pending>, not_stored: Option<NotStored>| {
            let mut cache_status = format!("floodgate; fwd={fwd}; fwd-status={status}");
            match (&pending, not_stored) {
                (Some(_), _) => cache_status.push_str("; stored"),
                (None, Some(why)) => {
                    cache_status.push_str("; detail=");
                    cache_status.push_str(why.as_str());
                }
                (None, None) => {}
            }
            Ok(Responded::Pass {
                cache_status,
                pending,
                not_stored,
            })
        };
        if forward.head {
            // Answers to HEAD are never stored: they have no body to replay.
            return pass(None, None);
        }
        let exchange = Exchange {
            request_cc: &forward.request_cc,
            request_has_authorization: forward.has_authorization,
            status,
            headers,
            request_time: forward.request_time,
            response_time: now,
        };
        let freshness = match policy::storable(
            &exchange,
            self.config.default_ttl,
            self.config.stale_if_error,
        ) {
            Ok(freshness) => freshness,
            Err(why) => return pass(None, Some(why)),
        };
        let selection = vary::select(&vary::names(headers), &forward.request);
        let entry = Entry {
            fingerprint: forward.fingerprint,
            status,
            freshness,
            key: forward.key.clone(),
            selection,
            headers: stored_headers(headers),
            body: Vec::new(),
        };
        let limit = usize::try_from(self.config.max_entry_bytes)
            .unwrap_or(usize::MAX)
            .saturating_sub(entry.encoded_len());
        let expected = policy::first(headers, "content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        if expected.is_some_and(|n| n > limit) || limit == 0 {
            return pass(None, None);
        }
        let variant = self.variant(&entry.selection);
        pass(
            Some(Pending {
                entry,
                variant,
                limit,
                expected,
                gave_up: false,
            }),
            None,
        )
    }

    /// §4.3.4: a `304` to the cache's own conditional request refreshes the
    /// stored entry's headers and freshness; the client gets the stored 200.
    fn refresh(
        &self,
        forward: &Forward,
        entry: &Entry,
        headers: &Headers,
        now: u64,
    ) -> Result<Responded, StoreError> {
        let merged = merge_304(&entry.headers, headers);
        let exchange = Exchange {
            request_cc: &forward.request_cc,
            request_has_authorization: forward.has_authorization,
            status: 200,
            headers: &merged,
            request_time: forward.request_time,
            response_time: now,
        };
        let storable = policy::storable(
            &exchange,
            self.config.default_ttl,
            self.config.stale_if_error,
        );
        let freshness = match storable {
            Ok(freshness) => freshness,
            Err(_) => policy::freshness(
                &exchange,
                &CacheControl::parse(policy::values(&merged, "cache-control")),
                self.config.default_ttl,
            ),
        };
        let refreshed = Entry {
            freshness,
            headers: merged,
            ..entry.clone()
        };
        let mut stored = None;
        if storable.is_ok() {
            if let Some(encoded) = refreshed.encode() {
                let variant = self.variant(&refreshed.selection);
                stored = Some(self.table.insert(&refreshed, &encoded, variant, now)?);
            }
        }
        let mut cache_status = format!("floodgate; fwd={}; fwd-status=304", forward.reason.fwd());
        if stored.is_some() {
            cache_status.push_str("; stored");
        }
        Ok(Responded::Replace {
            answer: Answer::from_entry(&refreshed, now, forward.head, &cache_status),
            revalidated: true,
            stored,
        })
    }

    /// Stores a completed [`Pending`] entry.
    pub fn store(&self, pending: Pending, now: u64) -> Result<Option<Stored>, StoreError> {
        let Some((entry, encoded, variant)) = pending.finish() else {
            return Ok(None);
        };
        self.table.insert(&entry, &encoded, variant, now).map(Some)
    }

    /// For an open breaker: the stored answer to `request`, if there is one
    /// it may give. A fresh entry is an ordinary hit (`false`); a stale one
    /// goes through [`degrade`] (`true`, counted as a stale answer).
    pub fn stale_for_open_breaker(
        &self,
        request: &RequestFacts,
        now: u64,
    ) -> Result<Option<(Answer, bool)>, StoreError> {
        let forward = match self.on_request(request, now)? {
            Plan::Hit(answer) => return Ok(Some((answer, false))),
            Plan::Forward(forward) => forward,
            Plan::Ignore | Plan::Bypass(_) => return Ok(None),
        };
        let Some(entry) = &forward.entry else {
            return Ok(None);
        };
        let Some(detail) = degrade(self.config, entry, Failure::BreakerOpen, now) else {
            return Ok(None);
        };
        let cache_status = format!(
            "floodgate; hit; ttl={}; detail={detail}",
            entry.freshness.ttl_seconds(now)
        );
        Ok(Some((
            Answer::from_entry(entry, now, forward.head, &cache_status),
            true,
        )))
    }

    fn variant(&self, selection: &Selection) -> u64 {
        let mut bytes = Vec::new();
        for (name, value) in selection {
            bytes.extend_from_slice(name.as_bytes());
            match value {
                Some(value) => {
                    bytes.push(1);
                    bytes.extend_from_slice(&(value.len() as u64).to_le_bytes());
                    bytes.extend_from_slice(value);
                }
                None => bytes.push(0),
            }
        }
        self.hasher.fingerprint("cache-variant", &bytes)
    }
}

/// The request's `Cache-Control`; without one, `Pragma: no-cache` means
/// `no-cache` (RFC 9111 §5.4).
fn request_cache_control(request: &RequestFacts) -> CacheControl {
    let mut cc = CacheControl::parse(request.header_values("cache-control"));
    if request.header_values("cache-control").next().is_none() {
        cc.no_cache = request
            .header_values("pragma")
            .any(|v| super::directives::split_list(v).any(|d| d.eq_ignore_ascii_case(b"no-cache")));
    }
    cc
}
