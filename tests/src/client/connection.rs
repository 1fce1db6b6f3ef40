//! One request on one fresh connection.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper::header::{HeaderName, HeaderValue, HOST};
use hyper::Uri;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::Barrier;
use tokio::time::{timeout_at, Instant};

use super::{Error, Request, Response};

enum Sender {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

/// Connects, sends and reads the response, all within the request's timeout.
pub(super) async fn send(request: Request) -> Result<Response, Error> {
    let deadline = Instant::now() + request.timeout;
    let sender = within(deadline, connect(&request)).await?;
    within(deadline, exchange(sender, &request)).await
}

/// Connects, waits at `barrier` for the others, then sends.
pub(super) async fn send_after(request: Request, barrier: Arc<Barrier>) -> Result<Response, Error> {
    let deadline = Instant::now() + request.timeout;
    let sender = within(deadline, connect(&request)).await;
    // Everyone waits, even a failed connection, so the others are not stuck.
    within(deadline, async { Ok(barrier.wait().await) }).await?;
    within(deadline, exchange(sender?, &request)).await
}

async fn within<T>(
    deadline: Instant,
    step: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    timeout_at(deadline, step)
        .await
        .map_err(|_| Error::from("timed out"))?
}

async fn connect(request: &Request) -> Result<Sender, Error> {
    let uri: Uri = request.url.parse()?;
    let authority = uri.authority().ok_or("url without host")?.as_str();
    let stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let io = TokioIo::new(stream);
    if request.http2 {
        let (sender, connection) = http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(connection);
        Ok(Sender::Http2(sender))
    } else {
        let (sender, connection) = http1::handshake(io).await?;
        tokio::spawn(connection);
        Ok(Sender::Http1(sender))
    }
}

async fn exchange(sender: Sender, request: &Request) -> Result<Response, Error> {
    let uri: Uri = request.url.parse()?;
    let mut builder = hyper::Request::builder().method(request.method.clone());
    for (name, value) in &request.headers {
        builder = builder.header(
            HeaderName::from_bytes(name.as_bytes())?,
            HeaderValue::from_bytes(value)?,
        );
    }
    let body = Full::new(request.body.clone());
    let response = match sender {
        Sender::Http1(mut sender) => {
            // HTTP/1.1 wants the origin form on the request line and a Host header.
            let authority = uri.authority().ok_or("url without host")?.as_str();
            let mut outgoing = builder
                .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
                .body(body)?;
            if !outgoing.headers().contains_key(HOST) {
                outgoing
                    .headers_mut()
                    .insert(HOST, HeaderValue::from_str(authority)?);
            }
            sender.send_request(outgoing).await?
        }
        Sender::Http2(mut sender) => sender.send_request(builder.uri(uri).body(body)?).await?,
    };
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}
