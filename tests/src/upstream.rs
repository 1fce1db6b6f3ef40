//! A programmable upstream server: tests decide per path what it answers and
//! read back what it received.

mod behavior;
mod serve;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::HeaderMap;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use behavior::Behavior;

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Path and query, e.g. `/a?b=1`.
    pub path: String,
    /// The headers exactly as received (values are bytes).
    pub headers: HeaderMap,
    /// The complete request body.
    pub body: Bytes,
}

impl RecordedRequest {
    /// The raw value of header `name`, if present (the first one).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name).map(|value| value.as_bytes())
    }
}

/// What the server does, shared between the test and the connection tasks.
#[derive(Default)]
struct State {
    behaviors: HashMap<String, Behavior>,
    fallback: Option<Behavior>,
    requests: Vec<RecordedRequest>,
    hits: HashMap<String, usize>,
}

impl State {
    /// Records `request` and returns what to answer it with.
    fn record(&mut self, request: RecordedRequest) -> Behavior {
        let path = request
            .path
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        *self.hits.entry(path.clone()).or_default() += 1;
        self.requests.push(request);
        match (self.behaviors.get(&path), &self.fallback) {
            (Some(behavior), _) | (None, Some(behavior)) => behavior.clone(),
            (None, None) => Behavior::status(200)
                .header("content-type", "text/plain")
                .body(path),
        }
    }
}

/// An HTTP/1.1 and HTTP/2 (prior knowledge) server on `127.0.0.1` with a port
/// chosen by the kernel. It stops when dropped.
///
/// Unknown paths get `200` with the path as a `text/plain` body.
pub struct Upstream {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Upstream {
    /// Starts a server on `127.0.0.1:0`.
    pub fn start() -> Upstream {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = crate::block_on(TcpListener::bind("127.0.0.1:0")).expect("bind upstream");
        let addr = listener.local_addr().expect("upstream address");
        let task = crate::runtime().spawn(serve::accept_loop(listener, state.clone()));
        Upstream { addr, state, task }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Answers requests for exactly `path` (query ignored) with `behavior`,
    /// from now on.
    pub fn on(&self, path: &str, behavior: Behavior) {
        self.lock().behaviors.insert(path.to_owned(), behavior);
    }

    /// Answers every path without its own behaviour with `behavior`.
    pub fn on_any(&self, behavior: Behavior) {
        self.lock().fallback = Some(behavior);
    }

    /// How many requests arrived for `path` (query ignored).
    pub fn hits(&self, path: &str) -> usize {
        self.lock().hits.get(path).copied().unwrap_or(0)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Forgets the requests and hit counts received so far (keeps behaviours).
    pub fn clear_requests(&self) {
        let mut state = self.lock();
        state.requests.clear();
        state.hits.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking test must not hide its own failure behind a poisoned lock.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        // Aborting the accept loop drops its connection set, which aborts them all.
        self.task.abort();
    }
}
