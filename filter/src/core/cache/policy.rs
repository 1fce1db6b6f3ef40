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
mod tests {
    use super::*;

    const S: u64 = NANOS;
    /// Wed, 03 Dec 2025 13:00:05 GMT
    const T0: u64 = 1_764_766_805 * S;
    const DATE_T0: &str = "Wed, 03 Dec 2025 13:00:05 GMT";

    fn headers(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn store(list: &[(&str, &str)]) -> Result<Freshness, NotStored> {
        store_with(list, &CacheControl::default(), false, 0)
    }

    fn store_with(
        list: &[(&str, &str)],
        request_cc: &CacheControl,
        auth: bool,
        default_ttl: u64,
    ) -> Result<Freshness, NotStored> {
        let h = headers(list);
        storable(
            &Exchange {
                request_cc,
                request_has_authorization: auth,
                status: 200,
                headers: &h,
                request_time: T0,
                response_time: T0,
            },
            default_ttl,
            0,
        )
    }

    #[test]
    fn max_age_response_is_fresh_until_its_lifetime() {
        let f = store(&[("cache-control", "max-age=10"), ("date", DATE_T0)]).unwrap();
        assert_eq!(f.lifetime, 10 * S);
        assert!(f.is_fresh(T0 + 9 * S));
        assert!(!f.is_fresh(T0 + 10 * S));
        assert_eq!(f.current_age(T0 + 4 * S), 4 * S);
        assert_eq!(f.ttl_seconds(T0 + 4 * S), 6);
        assert_eq!(f.ttl_seconds(T0 + 12 * S), -2);
    }

    #[test]
    fn s_maxage_beats_max_age_beats_expires() {
        let f = store(&[
            ("cache-control", "max-age=10, s-maxage=20"),
            ("expires", "0"),
        ])
        .unwrap();
        assert_eq!(f.lifetime, 20 * S);
        assert!(f.must_revalidate, "s-maxage implies proxy-revalidate");
        let f = store(&[
            ("cache-control", "max-age=10"),
            ("date", DATE_T0),
            ("expires", "Wed, 03 Dec 2025 13:01:05 GMT"),
        ])
        .unwrap();
        assert_eq!(f.lifetime, 10 * S);
    }

    #[test]
    fn expires_counts_from_date() {
        let f = store(&[
            ("date", "Wed, 03 Dec 2025 13:00:00 GMT"),
            ("expires", "Wed, 03 Dec 2025 13:01:00 GMT"),
        ])
        .unwrap();
        assert_eq!(f.lifetime, 60 * S);
        // Date is 5 s before the response arrived: the apparent age.
        assert_eq!(f.initial_age, 5 * S);
        assert!(f.is_fresh(T0 + 54 * S));
        assert!(!f.is_fresh(T0 + 55 * S));
    }

    #[test]
    fn an_invalid_expires_is_already_expired() {
        let f = store(&[("expires", "0"), ("etag", "\"v1\"")]).unwrap();
        assert_eq!(f.lifetime, 0);
        assert!(!f.is_fresh(T0));
    }

    #[test]
    fn without_date_the_response_is_aged_from_its_arrival() {
        let f = store(&[("cache-control", "max-age=10")]).unwrap();
        assert_eq!(f.initial_age, 0);
        assert!(f.is_fresh(T0 + 2 * S));
    }

    #[test]
    fn upstream_age_is_counted_in() {
        let f = store(&[
            ("cache-control", "max-age=300"),
            ("age", "100"),
            ("date", DATE_T0),
        ])
        .unwrap();
        assert_eq!(f.current_age(T0), 100 * S);
        assert!(f.is_fresh(T0 + 199 * S));
        assert!(!f.is_fresh(T0 + 200 * S));
    }

    #[test]
    fn response_delay_is_added_to_the_age_value() {
        let h = headers(&[("cache-control", "max-age=60"), ("age", "10")]);
        let f = storable(
            &Exchange {
                request_cc: &CacheControl::default(),
                request_has_authorization: false,
                status: 200,
                headers: &h,
                request_time: T0,
                response_time: T0 + 2 * S,
            },
            0,
            0,
        )
        .unwrap();
        assert_eq!(f.initial_age, 12 * S);
    }

    #[test]
    fn default_ttl_applies_only_without_explicit_freshness() {
        let none = CacheControl::default();
        let f = store_with(&[], &none, false, 7 * S).unwrap();
        assert_eq!(f.lifetime, 7 * S);
        let f = store_with(&[("cache-control", "max-age=0")], &none, false, 7 * S);
        assert_eq!(f, Err(NotStored::Useless));
        assert_eq!(store(&[]), Err(NotStored::Useless));
    }

    #[test]
    fn a_validator_alone_makes_it_worth_storing() {
        let f = store(&[("etag", "\"a\"")]).unwrap();
        assert_eq!(f.lifetime, 0);
        let f = store(&[("last-modified", DATE_T0), ("cache-control", "no-cache")]).unwrap();
        assert!(f.no_cache);
    }

    #[test]
    fn refusals() {
        let none = CacheControl::default();
        let no_store = CacheControl {
            no_store: true,
            ..CacheControl::default()
        };
        let ok = ("cache-control", "max-age=60");
        assert_eq!(
            store_with(&[ok], &no_store, false, 0),
            Err(NotStored::RequestNoStore)
        );
        assert_eq!(
            store(&[("cache-control", "max-age=60, no-store")]),
            Err(NotStored::ResponseNoStore)
        );
        assert_eq!(
            store(&[("cache-control", "private, max-age=60")]),
            Err(NotStored::Private)
        );
        assert_eq!(
            store(&[ok, ("set-cookie", "a=b")]),
            Err(NotStored::SetCookie)
        );
        assert_eq!(
            store(&[ok, ("vary", "accept, *")]),
            Err(NotStored::VaryStar)
        );
        assert_eq!(
            store_with(&[ok], &none, true, 0),
            Err(NotStored::Authorization)
        );
    }

    #[test]
    fn authorization_allowed_by_public_s_maxage_or_must_revalidate() {
        let none = CacheControl::default();
        for cc in [
            "public, max-age=60",
            "s-maxage=60",
            "must-revalidate, max-age=60",
        ] {
            let f = store_with(&[("cache-control", cc)], &none, true, 0).unwrap();
            assert!(f.shareable_with_auth, "{cc}");
        }
    }

    #[test]
    fn only_200_is_stored() {
        let h = headers(&[("cache-control", "max-age=60")]);
        for status in [201, 203, 204, 206, 301, 304, 404, 500] {
            let exchange = Exchange {
                request_cc: &CacheControl::default(),
                request_has_authorization: false,
                status,
                headers: &h,
                request_time: T0,
                response_time: T0,
            };
            assert_eq!(storable(&exchange, 0, 0), Err(NotStored::Status));
        }
    }

    #[test]
    fn stale_if_error_window_from_the_response_else_configured() {
        let f = store(&[("cache-control", "max-age=2, stale-if-error=10")]).unwrap();
        assert!(f.usable_on_error(T0 + 11 * S, 0));
        assert!(!f.usable_on_error(T0 + 12 * S, 3600 * S));
        let f = store(&[("cache-control", "max-age=2")]).unwrap();
        assert!(f.usable_on_error(T0 + 3 * S, 5 * S));
        assert!(!f.usable_on_error(T0 + 7 * S, 5 * S));
        assert!(!f.usable_on_error(T0 + 3 * S, 0));
    }

    /// Random lifetimes, upstream ages, clock skews and delays: the entry is
    /// fresh exactly while stored-at + lifetime - initial age has not passed,
    /// the initial age is never below the upstream's `Age`, and the age
    /// grows one for one with time.
    #[test]
    fn freshness_holds_its_invariants_for_random_exchanges() {
        let mut state = 0x2545_f491_u64;
        let mut next = |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for _ in 0..5_000 {
            let max_age = next(600);
            let age = next(400);
            let date_skew = next(20);
            let delay = next(3 * S);
            let date = super::super::date::parse(DATE_T0.as_bytes()).unwrap() - date_skew;
            let date_text = http_date(date);
            let h = headers(&[
                ("cache-control", &format!("max-age={max_age}")),
                ("age", &age.to_string()),
                ("date", &date_text),
            ]);
            let f = freshness(
                &Exchange {
                    request_cc: &CacheControl::default(),
                    request_has_authorization: false,
                    status: 200,
                    headers: &h,
                    request_time: T0,
                    response_time: T0 + delay,
                },
                &CacheControl::parse(values(&h, "cache-control")),
                0,
            );
            assert!(f.initial_age >= age * S);
            assert!(f.initial_age >= date_skew * S);
            let later = T0 + delay + next(1_000) * S;
            assert_eq!(f.current_age(later), f.initial_age + (later - f.stored_at));
            assert_eq!(f.is_fresh(later), f.current_age(later) < max_age * S);
        }
    }

    /// IMF-fixdate for a test date.
    fn http_date(seconds: u64) -> String {
        const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let days = seconds / 86_400;
        let rem = seconds % 86_400;
        // Civil from days (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        format!(
            "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
            DAYS[(days % 7) as usize],
            MONTHS[(month - 1) as usize],
            rem / 3_600,
            rem / 60 % 60,
            rem % 60
        )
    }

    #[test]
    fn http_dates_round_trip_through_the_test_formatter() {
        assert_eq!(http_date(1_764_766_805), DATE_T0);
        for seconds in [0, 951_782_400, 1_709_208_000, 4_102_444_799] {
            assert_eq!(
                super::super::date::parse(http_date(seconds).as_bytes()),
                Some(seconds)
            );
        }
    }

    #[test]
    fn must_revalidate_and_no_cache_never_stand_in_for_errors() {
        for cc in [
            "max-age=2, must-revalidate",
            "max-age=2, proxy-revalidate",
            "s-maxage=2",
            "no-cache, max-age=2",
        ] {
            let f = store(&[("cache-control", cc), ("etag", "\"x\"")]).unwrap();
            assert!(!f.usable_on_error(T0 + 3 * S, 3600 * S), "{cc}");
        }
    }
}
