//! An HTTP client for tests: one fresh connection per request, a timeout on
//! everything, header values as bytes.

mod connection;
mod request;

use std::sync::Arc;

use bytes::Bytes;
use hyper::HeaderMap;
use tokio::sync::Barrier;

pub use request::Request;

/// Anything that went wrong on the way: connect, protocol, timeout.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A complete response.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers as received (values are bytes).
    pub headers: HeaderMap,
    /// The complete body.
    pub body: Bytes,
}

impl Response {
    /// The raw value of header `name`, if present (the first one).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name).map(|value| value.as_bytes())
    }

    /// The value of header `name` as text; panics if it is not UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        let value = self.header(name)?;
        Some(std::str::from_utf8(value).expect("header value is not UTF-8"))
    }

    /// The body as text; panics if it is not UTF-8.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("body is not UTF-8")
    }
}

/// `GET url`; panics on any failure.
pub fn get(url: &str) -> Response {
    send(&Request::get(url))
}

/// Sends one request built from its parts; panics on any failure.
pub fn request(method: &str, url: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Response {
    let mut request = Request::new(method, url).body(Bytes::copy_from_slice(body));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    send(&request)
}

/// Sends `request` on a new connection; panics on any failure.
pub fn send(request: &Request) -> Response {
    try_send(request).unwrap_or_else(|e| panic!("{} {}: {e}", request.method, request.url))
}

/// Sends `request` on a new connection.
pub fn try_send(request: &Request) -> Result<Response, Error> {
    crate::block_on(connection::send(request.clone()))
}

/// Sends `request` `n` times at once: opens `n` connections first, then sends
/// on all of them together. Responses come back in connection order; panics if
/// any request fails.
pub fn burst(n: usize, request: &Request) -> Vec<Response> {
    try_burst(n, request)
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{} {}: {e}", request.method, request.url)))
        .collect()
}

/// Like [`burst`], returning each request's own outcome.
pub fn try_burst(n: usize, request: &Request) -> Vec<Result<Response, Error>> {
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            let request = request.clone();
            crate::runtime().spawn(connection::send_after(request, barrier))
        })
        .collect();
    crate::block_on(async {
        let mut outcomes = Vec::with_capacity(n);
        for task in tasks {
            outcomes.push(task.await.expect("burst task panicked"));
        }
        outcomes
    })
}
