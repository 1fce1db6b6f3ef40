//! A request description that can be sent many times.

use std::time::Duration;

use bytes::Bytes;
use hyper::Method;

/// A request to send with [`send`](super::send) or [`burst`](super::burst).
#[derive(Clone, Debug)]
pub struct Request {
    pub(super) method: Method,
    pub(super) url: String,
    pub(super) headers: Vec<(String, Vec<u8>)>,
    pub(super) body: Bytes,
    pub(super) timeout: Duration,
    pub(super) http2: bool,
}

impl Request {
    /// A request with `method` (e.g. `"POST"`) to `url` (`http://host:port/path`).
    pub fn new(method: &str, url: &str) -> Request {
        Request {
            method: Method::from_bytes(method.as_bytes()).expect("valid method"),
            url: url.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
            timeout: Duration::from_secs(10),
            http2: false,
        }
    }

    /// A `GET` to `url`.
    pub fn get(url: &str) -> Request {
        Request::new("GET", url)
    }

    /// Adds a header; the value is sent as raw bytes (it may be non-UTF-8).
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Request {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body (sent with a `content-length`).
    pub fn body(mut self, body: impl Into<Bytes>) -> Request {
        self.body = body.into();
        self
    }

    /// Bounds connecting, sending and reading the whole response (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = timeout;
        self
    }

    /// Speaks HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    pub fn http2(mut self) -> Request {
        self.http2 = true;
        self
    }
}
