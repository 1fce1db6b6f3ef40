//! Storability and freshness with fake time.

use super::*;

const S: u64 = NANOS;
/// Wed, 03 Dec 2025 13:00:05 GMT
const T0: u64 = 1_764_766_805 * S;
const DATE_T0: &str = "Wed, 03 Dec 2025 13:00:05 GMT";

use crate::core::request::header_list as headers;

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
        let date = crate::core::cache::date::parse(DATE_T0.as_bytes()).unwrap() - date_skew;
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
            crate::core::cache::date::parse(http_date(seconds).as_bytes()),
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
