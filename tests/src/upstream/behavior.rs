//! What the upstream answers for one path.

use std::time::Duration;

use bytes::Bytes;

/// An answer the upstream gives, built up from [`Behavior::status`].
#[derive(Clone, Debug)]
pub struct Behavior {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, Vec<u8>)>,
    pub(super) body: Bytes,
    pub(super) delay: Duration,
    pub(super) chunked: bool,
    pub(super) reset: bool,
    pub(super) cut: bool,
    pub(super) no_date: bool,
}

impl Behavior {
    /// Answers with `status`, no headers of its own and an empty body.
    pub fn status(status: u16) -> Behavior {
        Behavior {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            delay: Duration::ZERO,
            chunked: false,
            reset: false,
            cut: false,
            no_date: false,
        }
    }

    /// Closes the connection abruptly (TCP RST) instead of answering, after
    /// the request was read and any [`delay`](Behavior::delay) has passed.
    pub fn reset() -> Behavior {
        Behavior {
            reset: true,
            ..Behavior::status(0)
        }
    }

    /// Sends the status, the headers and the first half of the body
    /// (chunked, no `content-length`), then resets the connection (TCP RST)
    /// instead of sending the rest.
    pub fn cut_mid_body(mut self) -> Behavior {
        self.cut = true;
        self.chunked = true;
        self
    }

    /// Sends no `date` header (by default the upstream adds the current
    /// date, like most servers, unless the behaviour sets its own).
    pub fn without_date(mut self) -> Behavior {
        self.no_date = true;
        self
    }

    /// Adds a header; the value is sent as raw bytes (it may be non-UTF-8).
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Behavior {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body. It goes out with a `content-length` unless
    /// [`chunked`](Behavior::chunked) is set.
    pub fn body(mut self, body: impl Into<Bytes>) -> Behavior {
        self.body = body.into();
        self
    }

    /// Waits this long after reading the request before answering.
    pub fn delay(mut self, delay: Duration) -> Behavior {
        self.delay = delay;
        self
    }

    /// Sends the body in two frames without a `content-length` (chunked
    /// transfer encoding on HTTP/1.1).
    pub fn chunked(mut self) -> Behavior {
        self.chunked = true;
        self
    }
}
