//! The upstream's accept loop and request handler.

use std::convert::Infallible;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Channel, Full};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::{Behavior, RecordedRequest, State};

type Body = http_body_util::Either<Full<Bytes>, Channel<Bytes>>;

/// Lets a request handler tear down the connection it arrived on.
struct Connection {
    fd: RawFd,
    reset: Notify,
}

/// Serves every connection until the task is aborted; aborting drops the
/// `JoinSet`, which aborts the connections too.
pub(super) async fn accept_loop(listener: TcpListener, state: Arc<Mutex<State>>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Arc::new(Connection {
            fd: stream.as_raw_fd(),
            reset: Notify::new(),
        });
        let state = state.clone();
        connections.spawn(async move {
            let service = {
                let connection = connection.clone();
                service_fn(move |request| handle(request, state.clone(), connection.clone()))
            };
            // The handler adds `date` itself, so a behaviour can leave it out.
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().auto_date_header(false);
            builder.http2().auto_date_header(false);
            let serving = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = serving => {}
                // Dropping the connection closes the socket; with SO_LINGER 0
                // the kernel sends a RST instead of a FIN.
                _ = connection.reset.notified() => {}
            }
        });
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
}

async fn handle(
    request: hyper::Request<Incoming>,
    state: Arc<Mutex<State>>,
    connection: Arc<Connection>,
) -> Result<hyper::Response<Body>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        version: format!("{:?}", parts.version),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts.headers,
        body,
    };
    let behavior = state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record(recorded);

    if !behavior.delay.is_zero() {
        tokio::time::sleep(behavior.delay).await;
    }
    if behavior.reset {
        set_zero_linger(connection.fd);
        connection.reset.notify_one();
        // Never answer. On HTTP/2 this future runs in a task of its own that
        // outlives the connection, so it gives up after a while.
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    }
    if behavior.cut {
        return Ok(cut_response(behavior, connection));
    }
    Ok(response(behavior))
}

/// The headers and the first half of the body, then a reset.
fn cut_response(behavior: Behavior, connection: Arc<Connection>) -> hyper::Response<Body> {
    let (mut sender, channel) = Channel::new(2);
    let half = behavior.body.slice(..behavior.body.len() / 2);
    let _ = sender.try_send(Frame::data(half));
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        set_zero_linger(connection.fd);
        connection.reset.notify_one();
        // Keep the body open: ending it would let the response complete.
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        drop(sender);
    });
    let mut response = response(Behavior {
        chunked: false,
        body: Bytes::new(),
        ..behavior
    });
    *response.body_mut() = Body::Right(channel);
    response
}

fn response(behavior: Behavior) -> hyper::Response<Body> {
    let body = if behavior.chunked {
        // No size hint: hyper sends chunked on HTTP/1.1, no content-length on HTTP/2.
        let (mut sender, channel) = Channel::new(2);
        let half = behavior.body.len() / 2;
        for part in [behavior.body.slice(..half), behavior.body.slice(half..)] {
            if !part.is_empty() {
                let _ = sender.try_send(Frame::data(part));
            }
        }
        Body::Right(channel)
    } else {
        Body::Left(Full::new(behavior.body))
    };
    let add_date = !behavior.no_date
        && !behavior
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("date"));
    let mut response = hyper::Response::new(body);
    if add_date {
        let now = httpdate::fmt_http_date(std::time::SystemTime::now());
        if let Ok(value) = HeaderValue::from_str(&now) {
            response.headers_mut().insert(hyper::header::DATE, value);
        }
    }
    *response.status_mut() = hyper::StatusCode::from_u16(behavior.status).expect("valid status");
    for (name, value) in behavior.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("valid header name");
        let value = HeaderValue::from_bytes(&value).expect("valid header value");
        response.headers_mut().append(name, value);
    }
    response
}

/// Makes the next close of `fd` abort the connection (RST).
fn set_zero_linger(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `fd` belongs to the connection whose request is being handled,
    // so it is open; the option value is a valid `linger` of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER) failed");
}
