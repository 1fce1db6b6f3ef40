//! `match`: which requests a rule, breaker or cache applies to.

use super::request::RequestFacts;

/// A condition on one request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderCondition {
    /// The header is present (any value, even empty).
    Present,
    /// Some value of the header equals these bytes exactly.
    Exact(Vec<u8>),
}

/// All given conditions must hold; an empty matcher matches every request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    /// The path (without query string) starts with this.
    pub path_prefix: Option<Vec<u8>>,
    /// The path (without query string) equals this.
    pub path_exact: Option<Vec<u8>>,
    /// The method is one of these; empty means any method.
    pub methods: Vec<Vec<u8>>,
    /// Header name (lowercase) and the condition on it.
    pub headers: Vec<(String, HeaderCondition)>,
    /// Envoy's route name equals this.
    pub route_name: Option<Vec<u8>>,
}

impl Matcher {
    /// True when every configured condition holds for `request`.
    pub fn matches(&self, request: &RequestFacts) -> bool {
        let path = request.path_only();
        if let Some(prefix) = &self.path_prefix {
            if !path.starts_with(prefix) {
                return false;
            }
        }
        if let Some(exact) = &self.path_exact {
            if path != exact.as_slice() {
                return false;
            }
        }
        if !self.methods.is_empty() && !self.methods.contains(&request.method) {
            return false;
        }
        if let Some(route) = &self.route_name {
            if request.route_name != *route {
                return false;
            }
        }
        self.headers.iter().all(|(name, condition)| {
            let mut values = request.header_values(name);
            match condition {
                HeaderCondition::Present => values.next().is_some(),
                HeaderCondition::Exact(want) => values.any(|value| value == want.as_slice()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, headers: &[(&str, &[u8])]) -> RequestFacts {
        RequestFacts {
            method: method.as_bytes().to_vec(),
            path: path.as_bytes().to_vec(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect(),
            route_name: b"api".to_vec(),
            ..RequestFacts::default()
        }
    }

    #[test]
    fn empty_matcher_matches_everything() {
        assert!(Matcher::default().matches(&request("DELETE", "/x", &[])));
    }

    #[test]
    fn prefix_and_exact_ignore_the_query() {
        let prefix = Matcher {
            path_prefix: Some(b"/api/".to_vec()),
            ..Matcher::default()
        };
        assert!(prefix.matches(&request("GET", "/api/users?page=2", &[])));
        assert!(!prefix.matches(&request("GET", "/apix", &[])));
        assert!(!prefix.matches(&request("GET", "/?/api/", &[])));

        let exact = Matcher {
            path_exact: Some(b"/login".to_vec()),
            ..Matcher::default()
        };
        assert!(exact.matches(&request("POST", "/login?next=/", &[])));
        assert!(!exact.matches(&request("POST", "/login/", &[])));
    }

    #[test]
    fn methods_are_a_set() {
        let m = Matcher {
            methods: vec![b"GET".to_vec(), b"POST".to_vec()],
            ..Matcher::default()
        };
        assert!(m.matches(&request("POST", "/", &[])));
        assert!(!m.matches(&request("PUT", "/", &[])));
        assert!(!m.matches(&request("get", "/", &[])));
    }

    #[test]
    fn header_conditions_check_every_value() {
        let m = Matcher {
            headers: vec![
                ("x-tier".into(), HeaderCondition::Exact(b"gold".to_vec())),
                ("x-key".into(), HeaderCondition::Present),
            ],
            ..Matcher::default()
        };
        assert!(m.matches(&request(
            "GET",
            "/",
            &[("x-tier", b"free"), ("x-tier", b"gold"), ("x-key", b"")]
        )));
        assert!(!m.matches(&request("GET", "/", &[("x-tier", b"gold")])));
        assert!(!m.matches(&request(
            "GET",
            "/",
            &[("x-tier", b"\xffgold"), ("x-key", b"1")]
        )));
    }

    #[test]
    fn all_conditions_must_hold() {
        let m = Matcher {
            path_prefix: Some(b"/api/".to_vec()),
            methods: vec![b"GET".to_vec()],
            route_name: Some(b"api".to_vec()),
            ..Matcher::default()
        };
        assert!(m.matches(&request("GET", "/api/x", &[])));
        assert!(!m.matches(&request("POST", "/api/x", &[])));
        let other_route = RequestFacts {
            route_name: b"web".to_vec(),
            ..request("GET", "/api/x", &[])
        };
        assert!(!m.matches(&other_route));
    }
}
