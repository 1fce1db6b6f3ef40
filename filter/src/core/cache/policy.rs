//! Storability (RFC 9111 §3) and freshness (§4.2) of one exchange.
//!
//! Times are nanoseconds since the Unix epoch; header dates have one-second
//! resolution and are scaled up.

use super::date;
use super::directives::{self, CacheControl};
use super::vary;

const NANOS: u64 = 1_000_000_000;

/// Response headers as Envoy hands them over: lowercase names, byte values.
pub type Headers = [(String, Vec<u8>)];

/// Every value of header `name` (lowercase).
pub fn values<'a>(headers: &'a Headers, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

/// The first value of header `name`.
pub fn first<'a>(headers: &'a Headers, name: &'a str) -> Option<&'a [u8]> {
    values(headers, name).next()
}

/// What the cache learned from a storable response: enough to age it and to
/// decide later whether it may be served, revalidated or used on errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Freshness {
    /// When the response arrived (§4.2.3 `response_time`).
    pub stored_at: u64,
    /// §4.2.3 `corrected_initial_age`, nanoseconds.
    pub initial_age: u64,
    /// §4.2.1 freshness lifetime, nanoseconds.
    pub lifetime: u64,
    /// The response's own `stale-if-error`, nanoseconds.
    pub stale_if_error: Option<u64>,
    /// `must-revalidate`, `proxy-revalidate` or `s-maxage` (§5.2.2.10
    /// gives `s-maxage` the meaning of `proxy-revalidate`): never served
    /// stale, not even on errors.
    pub must_revalidate: bool,
    /// `no-cache`: validated before every use, never served stale.
    pub no_cache: bool,
    /// `public`, `s-maxage` or `must-revalidate`: may answer requests that
    /// carry `Authorization` (§3.5).
    pub shareable_with_auth: bool,
}

impl Freshness {
    /// §4.2.3 `current_age` at `now`, nanoseconds.
    pub fn current_age(&self, now: u64) -> u64 {
        self.initial_age
            .saturating_add(now.saturating_sub(self.stored_at))
    }

    /// §4.2: fresh while the current age is below the lifetime.
    pub fn is_fresh(&self, now: u64) -> bool {
        !self.no_cache && self.current_age(now) < self.lifetime
    }

    /// Seconds of freshness left at `now`; negative once stale (the RFC
    /// 9211 `ttl` parameter).
    pub fn ttl_seconds(&self, now: u64) -> i64 {
        let lifetime = i64::try_from(self.lifetime / NANOS).unwrap_or(i64::MAX);
        let age = i64::try_from(self.current_age(now) / NANOS).unwrap_or(i64::MAX);
        lifetime.saturating_sub(age)
    }

    /// Whether a stale copy may stand in for an error answer at `now`
    /// (RFC 5861 §4): the response's own `stale-if-error`, else
    /// `configured`, counted from the end of freshness. Never for
    /// `must-revalidate` or `no-cache` responses (§4.2.4: a cache must not
    /// serve them stale).
    pub fn usable_on_error(&self, now: u64, configured: u64) -> bool {
        if self.must_revalidate || self.no_cache {
            return false;
        }
        let window = self.stale_if_error.unwrap_or(configured);
        self.current_age(now) < self.lifetime.saturating_add(window)
    }
}

/// Why a response is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    /// Only complete `200` answers to `GET` are stored.
    Status,
    /// The request said `no-store` (§5.2.1.5).
    RequestNoStore,
    /// The response said `no-store` (§5.2.2.5).
    ResponseNoStore,
    /// `private` (§5.2.2.7): a shared cache must not store it.
    Private,
    /// The request had `Authorization` and the response did not allow
    /// shared caching of it (§3.5).
    Authorization,
    /// `Set-Cookie` is never stored.
    SetCookie,
    /// `Vary: *` can never match a later request (§4.1).
    VaryStar,
    /// No freshness, no validator and no stale-if-error window: storing it
    /// would serve no request.
    Useless,
}

impl NotStored {
    /// A token for logs and the `cache-status` detail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::RequestNoStore => "request-no-store",
            Self::ResponseNoStore => "no-store",
            Self::Private => "private",
            Self::Authorization => "authorization",
            Self::SetCookie => "set-cookie",
            Self::VaryStar => "vary-star",
            Self::Useless => "no-freshness",
        }
    }
}

/// One upstream exchange, as far as storing it goes.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The request's `Cache-Control`.
    pub request_cc: &'a CacheControl,
    /// The request carried `Authorization`.
    pub request_has_authorization: bool,
    /// The response status.
    pub status: u16,
    /// The response headers.
    pub headers: &'a Headers,
    /// When the request was sent upstream (§4.2.3 `request_time`).
    pub request_time: u64,
    /// When the response headers arrived (§4.2.3 `response_time`).
    pub response_time: u64,
}

/// RFC 9111 §3: may this response be stored by a shared cache? Callers
/// only ask for answers to `GET`. `default_ttl` and `stale_if_error` are
/// the configured values, nanoseconds.
pub fn storable(
    exchange: &Exchange,
    default_ttl: u64,
    stale_if_error: u64,
) -> Result<Freshness, NotStored> {
    let cc = CacheControl::parse(values(exchange.headers, "cache-control"));

    // §3: the status must be understood and the response complete; this
    // cache keeps 200s only (no 206, no 304 as such).
    if exchange.status != 200 {
        return Err(NotStored::Status);
    }
    // §3: no-store in either the request or the response.
    if exchange.request_cc.no_store {
        return Err(NotStored::RequestNoStore);
    }
    if cc.no_store {
        return Err(NotStored::ResponseNoStore);
    }
    // §3: a shared cache must not store a private response.
    if cc.private {
        return Err(NotStored::Private);
    }
    // §3.5: a request with Authorization only when the response allows it.
    let shareable_with_auth = cc.public || cc.s_maxage.is_some() || cc.must_revalidate;
    if exchange.request_has_authorization && !shareable_with_auth {
        return Err(NotStored::Authorization);
    }
    if first(exchange.headers, "set-cookie").is_some() {
        return Err(NotStored::SetCookie);
    }
    if vary::is_star(exchange.headers) {
        return Err(NotStored::VaryStar);
    }

    let freshness = freshness(exchange, &cc, default_ttl);
    let has_validator = first(exchange.headers, "etag").is_some()
        || first(exchange.headers, "last-modified").is_some();
    let window = if freshness.must_revalidate || freshness.no_cache {
        0
    } else {
        freshness.stale_if_error.unwrap_or(stale_if_error)
    };
    if freshness.lifetime == 0 && !has_validator && window == 0 {
        return Err(NotStored::Useless);
    }
    Ok(freshness)
}

/// §4.2.1 freshness lifetime and §4.2.3 age of a response, also used to
/// refresh an entry from a `304` with the merged headers.
pub fn freshness(exchange: &Exchange, cc: &CacheControl, default_ttl: u64) -> Freshness {
    let headers = exchange.headers;
    // §4.2.1, a response without Date is dated when it was received (§6.6.1
    // of RFC 9110 lets a recipient add one).
    let date = first(headers, "date").and_then(date::parse);
    let date_nanos = date.map_or(exchange.response_time, |s| s.saturating_mul(NANOS));

    // §4.2.1: s-maxage, then max-age, then Expires minus Date; an invalid
    // Expires (e.g. "0") means already expired. Heuristic freshness
    // (§4.2.2) is replaced by the configured default_ttl.
    let lifetime = if let Some(seconds) = cc.s_maxage.or(cc.max_age) {
        seconds.saturating_mul(NANOS)
    } else if let Some(expires) = first(headers, "expires") {
        date::parse(expires).map_or(0, |s| s.saturating_mul(NANOS).saturating_sub(date_nanos))
    } else {
        default_ttl
    };

    // §4.2.3: apparent_age = max(0, response_time - date_value);
    // corrected_age_value = age_value + response_delay;
    // corrected_initial_age = max(apparent_age, corrected_age_value).
    let apparent_age = exchange.response_time.saturating_sub(date_nanos);
    let response_delay = exchange.response_time.saturating_sub(exchange.request_time);
    let age_value = directives::age(values(headers, "age")).unwrap_or(0);
    let corrected_age_value = age_value
        .saturating_mul(NANOS)
        .saturating_add(response_delay);

    Freshness {
        stored_at: exchange.response_time,
        initial_age: apparent_age.max(corrected_age_value),
        lifetime,
        stale_if_error: cc.stale_if_error.map(|s| s.saturating_mul(NANOS)),
        must_revalidate: cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage.is_some(),
        no_cache: cc.no_cache,
        shareable_with_auth: cc.public || cc.s_maxage.is_some() || cc.must_revalidate,
    }
}

#[cfg(test)]
mod tests;
