//! HTTP routes: /graphql (our own transport, see `graphql`), GraphiQL's assets, /healthz,
//! /readyz, the JWKS, the landing pages of links in mail, and stored avatars at /media.
//! Every response says `Cache-Control: no-store` (answers carry tokens and personal data) unless
//! its handler says otherwise (the JWKS, avatars, GraphiQL's assets), and
//! `X-Content-Type-Options: nosniff`, so a browser never runs an answer as another type than
//! the one declared (https://cheatsheetseries.owasp.org/cheatsheets/HTTP_Headers_Cheat_Sheet.html).

pub mod client_ip;
pub mod documents;
mod envelope;
mod graphiql;
mod graphql;
mod health;
mod introspect;
mod links;
mod media;

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tower_http::cors::{AllowOrigin, CorsLayer};

use self::envelope::{EnvelopeLayer, REQUEST_TIMEOUT};
use crate::{
    schema::IdgateSchema,
    security::cookies::{CSRF_HEADER, TRANSPORT_HEADER},
    services::Services,
};

/// An introspection request is one token in a form: far under this.
const INTROSPECTION_BODY_BYTES: usize = 16 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct HttpState {
    /// Set once the instance is stopping: it reports unready so traffic moves away.
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
    pub schema: IdgateSchema,
    pub services: Services,
    pub max_body_bytes: usize,
    /// Whether GraphiQL (the page and its assets) is served.
    pub graphiql: bool,
    /// Proxies whose forwarding headers name the client.
    pub proxies: client_ip::TrustedProxies,
    /// Documents parsed before, by their text.
    pub documents: Arc<documents::ParsedDocuments>,
    /// Field-depth limits, checked before the schema sees a document.
    pub depth_limits: crate::graphql::limits::DepthLimits,
    /// This server's own origin (`scheme://host[:port]` of the public URL), for CSRF checks.
    pub public_origin: String,
    /// Browser origins allowed cross-origin; none by default.
    pub cors_origins: Vec<HeaderValue>,
    /// Seconds verifiers may cache the JWKS: the key reload interval, which is also how long a
    /// rotated key is published before it signs.
    pub jwks_max_age: u64,
    /// Callers of /oauth/introspect present it; None: the endpoint is off.
    pub introspection_secret: Option<secrecy::SecretString>,
    /// The tokens' issuer, named in introspection answers.
    pub issuer: String,
    /// Opens /metrics on this port as a bearer token; None: /metrics is not served here.
    pub metrics_token: Option<secrecy::SecretString>,
}

/// The routes of the metrics listener (IDGATE_METRICS_LISTEN): /metrics, unauthenticated.
pub fn metrics_router() -> Router {
    Router::new().route("/metrics", get(|| async { metrics_text() }))
}

/// GET /metrics on the public port: only with IDGATE_METRICS_TOKEN as bearer; otherwise it is
/// not there (404) or refused (401).
async fn metrics(State(state): State<Arc<HttpState>>, headers: axum::http::HeaderMap) -> Response {
    use secrecy::ExposeSecret;
    let Some(token) = &state.metrics_token else { return StatusCode::NOT_FOUND.into_response() };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !crate::security::crypto::constant_time_eq(presented.trim().as_bytes(), token.expose_secret().as_bytes()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    metrics_text()
}

fn metrics_text() -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], crate::telemetry::metrics().render()).into_response()
}

/// The application's routes inside its middleware: what the listener serves.
///
/// The stack is served as it is, not as a `Router`'s fallback service: a router would box it,
/// clone the box for every request and route each request twice.
pub fn service(
    state: HttpState,
) -> impl tower::Service<axum::extract::Request, Response = Response, Error = std::convert::Infallible, Future: Send>
+ Clone
+ Send
+ Sync
+ 'static {
    let cors = (!state.cors_origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(state.cors_origins.clone()))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                header::HeaderName::from_static(CSRF_HEADER),
                header::HeaderName::from_static(TRANSPORT_HEADER),
            ])
            // Cookies travel only to and from the listed origins (never with `*`).
            .allow_credentials(true)
            .max_age(Duration::from_secs(600))
    });
    let mut routes =
        Router::new().route("/graphql", get(graphql::get).post(graphql::post).fallback(graphql::method_not_allowed));
    if state.graphiql {
        routes = routes.route("/graphiql/assets/{name}", get(graphiql::asset));
    }
    let routes = routes
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/metrics", get(metrics))
        .route(
            "/oauth/introspect",
            axum::routing::post(introspect::introspect)
                .layer(axum::extract::DefaultBodyLimit::max(INTROSPECTION_BODY_BYTES)),
        )
        .route("/media/{file}", get(media::avatar))
        .route("/verify-email", get(links::verify_email_page).post(links::verify_email_submit))
        .route("/reset-password", get(links::reset_password_page).post(links::reset_password_submit))
        .with_state(Arc::new(state));
    // The middleware wraps the router once, outermost first. `Router::layer` would wrap every
    // route in every layer, each a boxed service cloned and a boxed future allocated per request.
    tower::ServiceBuilder::new()
        // Outermost, so the answers of CORS preflights get its headers too.
        .layer(EnvelopeLayer)
        .option_layer(cors)
        .service(routes)
}

/// Keeps a timer pending that is due before any request's timeout; runs while the server does.
///
/// Every request arms a [`REQUEST_TIMEOUT`] timer. tokio wakes its timer driver (a write to an
/// eventfd, then a wasted turn of the event loop) whenever a new timer is due before every
/// timer the driver last knew of. Most requests finish within their first poll, so their
/// timers come and go with no other timer pending, and each one woke the driver: a third
/// syscall beside the request's read and write. With this tick pending, request timeouts are
/// never the earliest timer; it costs one wake-up per tick.
pub async fn tick_under_request_timeouts() {
    let mut ticks = tokio::time::interval(REQUEST_TIMEOUT / 3);
    loop {
        ticks.tick().await;
    }
}

/// The public keys that verify access tokens (RFC 7517). Cacheable for the key reload
/// interval: a new key is published that long before it signs.
async fn jwks(State(state): State<Arc<HttpState>>) -> Response {
    let mut response = Json(state.services.auth.tokens.jwks()).into_response();
    let cache = format!("public, max-age={}", state.jwks_max_age);
    if let Ok(value) = HeaderValue::from_str(&cache) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}
