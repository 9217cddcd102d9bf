//! The outermost middleware: names every request and sets the headers every response carries.
//!
//! - A request keeps a client's `X-Request-Id` when it is a plain token (letters, digits, `-`,
//!   `_`, `.`; at most 64), else gets a new one ([`next_request_id`]). The id goes into the
//!   request's extensions (the log span reads it there) and back in the response's
//!   `X-Request-Id`.
//! - A response says `Cache-Control: no-store` (answers carry tokens and personal data) unless
//!   its handler chose a cache policy, and `X-Content-Type-Options: nosniff`, so a browser never
//!   runs an answer as another type than the one declared.
//!
//! A plain tower layer rather than `axum::middleware::from_fn`, which boxes a clone of the
//! inner service for every request: this is on every request's path.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        LazyLock,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use axum::{
    extract::Request,
    http::{HeaderValue, header},
    response::Response,
};

const REQUEST_ID: &str = "x-request-id";

/// The id a request was given.
#[derive(Clone)]
pub struct RequestId(pub String);

/// Wraps a service in [`Envelope`].
#[derive(Clone, Copy, Default)]
pub struct EnvelopeLayer;

impl<S> tower::Layer<S> for EnvelopeLayer {
    type Service = Envelope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Envelope { inner }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub struct Envelope<S> {
    inner: S,
}

impl<S> tower::Service<Request> for Envelope<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let given = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|id| {
                (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            })
            .map(str::to_owned);
        let id = given.unwrap_or_else(next_request_id);
        let value = HeaderValue::from_str(&id).ok();
        request.extensions_mut().insert(RequestId(id));
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            let headers = response.headers_mut();
            if let Some(value) = value {
                headers.insert(REQUEST_ID, value);
            }
            if !headers.contains_key(header::CACHE_CONTROL) {
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            Ok(response)
        })
    }
}

/// A new request id: this process's random prefix and a counter. Unique across instances and
/// restarts without a random draw (a system call) per request; ids name requests, they guard
/// nothing.
fn next_request_id() -> String {
    static PREFIX: LazyLock<String> = LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n:x}", *PREFIX)
}
