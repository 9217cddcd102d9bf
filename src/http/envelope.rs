//! The one middleware every request passes: it names the request, runs it in its log span
//! under a timeout and a panic guard, and sets the headers every response carries.
//!
//! - A request keeps a client's `X-Request-Id` when it is a plain token (letters, digits, `-`,
//!   `_`, `.`; at most 64), else gets a new one ([`next_request_id`]). The id names the
//!   request's log span and comes back in the response's `X-Request-Id`.
//! - The span names the path only: a query string may carry a GraphQL document or variables.
//!   The GraphQL handler fills in the operation, the caller and the outcome; the request's last
//!   line gives its status and latency.
//! - A request that takes longer than [`REQUEST_TIMEOUT`] is answered 503; one that panics
//!   (a bug) is answered 500 with no detail.
//! - A response says `Cache-Control: no-store` (answers carry tokens and personal data) unless
//!   its handler chose a cache policy, and `X-Content-Type-Options: nosniff`, so a browser never
//!   runs an answer as another type than the one declared.
//!
//! One hand-written layer rather than tower-http's trace, timeout and catch-panic layers (and
//! `axum::middleware::from_fn`): each of those wraps the response body in a box of its own or
//! boxes a clone of the inner service, and this is on every request's path. The parts are
//! still the crates' own: `tracing` spans, `tokio`'s timeout, `futures`' `catch_unwind`.

use std::{
    convert::Infallible,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::{
        LazyLock,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::FutureExt;
use tracing::Instrument;

const REQUEST_ID: &str = "x-request-id";

/// How long a request may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let id = request_id(&request);
        let span = tracing::info_span!(
            "request",
            request_id = id.to_str().unwrap_or_default(),
            method = %request.method(),
            path = request.uri().path(),
            operation = tracing::field::Empty,
            user = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let inner = &mut self.inner;
        let answer = span.in_scope(|| std::panic::catch_unwind(AssertUnwindSafe(|| inner.call(request))));
        let finish = async move {
            let answered = match answer {
                Ok(answer) => tokio::time::timeout(REQUEST_TIMEOUT, AssertUnwindSafe(answer).catch_unwind()).await,
                Err(panic) => Ok(Err(panic)),
            };
            let mut response = match answered {
                Ok(Ok(Ok(response))) => response,
                Ok(Err(_)) => {
                    // The panic's message went to standard error through the panic hook.
                    tracing::error!("the request's handler panicked");
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
                }
                Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            };
            let headers = response.headers_mut();
            headers.insert(REQUEST_ID, id);
            if !headers.contains_key(header::CACHE_CONTROL) {
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            let status = response.status().as_u16();
            let latency_us = started.elapsed().as_micros();
            if response.status().is_server_error() {
                tracing::error!(status, latency_us, "request failed");
            } else {
                tracing::info!(status, latency_us, "finished processing request");
            }
            Ok(response)
        };
        Box::pin(finish.instrument(span))
    }
}

/// The request's own `X-Request-Id` when it is a plain token, else a new id.
fn request_id(request: &Request) -> HeaderValue {
    let given = request.headers().get(REQUEST_ID).filter(|id| {
        (1..=64).contains(&id.len()) && id.as_bytes().iter().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
    });
    given.cloned().unwrap_or_else(next_request_id)
}

/// A new request id: this process's random prefix and a counter in hex. Unique across
/// instances and restarts without a random draw (a system call) per request; ids name
/// requests, they guard nothing.
fn next_request_id() -> HeaderValue {
    static PREFIX: LazyLock<String> = LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // The String becomes the value's bytes without a copy.
    HeaderValue::try_from(format!("{}-{n:x}", *PREFIX)).unwrap_or_else(|_| HeaderValue::from_static("unnamed"))
}

#[cfg(test)]
mod tests {
    use tower::{Layer, ServiceExt};

    use super::*;

    async fn answer_of<S>(service: S, request_id: Option<&'static str>) -> Response
    where
        S: tower::Service<Request, Response = Response, Error = Infallible>,
        S::Future: Send + 'static,
    {
        let mut request = Request::new(axum::body::Body::empty());
        if let Some(id) = request_id {
            request.headers_mut().insert(REQUEST_ID, HeaderValue::from_static(id));
        }
        match EnvelopeLayer.layer(service).oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    #[tokio::test]
    async fn a_handler_that_panics_is_answered_500_with_the_usual_headers() {
        let panics_later = tower::service_fn(|_: Request| async {
            if true {
                panic!("a bug in a handler");
            }
            Ok::<_, Infallible>(Response::new(axum::body::Body::empty()))
        });
        let answer = answer_of(panics_later, Some("lb-7")).await;
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(answer.headers()[REQUEST_ID], "lb-7");
        assert_eq!(answer.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(answer.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let body = axum::body::to_bytes(answer.into_body(), 1024).await.unwrap_or_default();
        assert_eq!(&body[..], b"internal error", "no detail of the panic");

        struct PanicsOnCall;
        impl tower::Service<Request> for PanicsOnCall {
            type Response = Response;
            type Error = Infallible;
            type Future = std::future::Ready<Result<Response, Infallible>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: Request) -> Self::Future {
                panic!("a bug before the handler's future exists")
            }
        }
        let answer = answer_of(PanicsOnCall, None).await;
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(answer.headers().contains_key(REQUEST_ID));
    }

    #[tokio::test]
    async fn a_handler_keeps_its_own_cache_policy() {
        let cacheable = tower::service_fn(|_: Request| async {
            let mut response = Response::new(axum::body::Body::empty());
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
            Ok::<_, Infallible>(response)
        });
        let answer = answer_of(cacheable, Some("not a plain token")).await;
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.headers()[header::CACHE_CONTROL], "public, max-age=60");
        let id = answer.headers()[REQUEST_ID].to_str().unwrap_or_default();
        assert!(!id.contains(' ') && id.len() > 12, "a new id replaces one that is no plain token: {id}");
    }

    #[test]
    fn new_ids_are_the_prefix_and_the_counter_in_hex() {
        let ids: Vec<String> =
            (0..20).map(|_| next_request_id().to_str().map(str::to_owned).unwrap_or_default()).collect();
        let (prefix, _) = ids[0].split_once('-').unwrap_or_default();
        assert_eq!(prefix.len(), 12, "{ids:?}");
        let counters: Vec<u64> = ids
            .iter()
            .filter_map(|id| id.strip_prefix(prefix)?.strip_prefix('-'))
            .filter_map(|hex| u64::from_str_radix(hex, 16).ok())
            .collect();
        assert_eq!(counters.len(), ids.len(), "{ids:?}");
        assert!(counters.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    }
}
