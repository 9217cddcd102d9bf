//! `POST /oauth/introspect` (RFC 7662) for services that do not speak GraphQL: the same answer
//! as `tokenInfo`, for callers presenting IDGATE_INTROSPECTION_SECRET (HTTP Basic password, or
//! bearer). Without the setting the endpoint does not exist (404).

use std::sync::Arc;

use axum::{
    Form, Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use super::HttpState;
use crate::{auth::model::TokenType, security::crypto::constant_time_eq};

/// The form fields idgate reads; others (RFC 7662's `token_type_hint`) are ignored, since
/// idgate tells the kinds of token apart itself.
#[derive(Deserialize)]
pub struct IntrospectionRequest {
    token: String,
}

pub async fn introspect(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    Form(request): Form<IntrospectionRequest>,
) -> Response {
    let Some(secret) = &state.introspection_secret else { return StatusCode::NOT_FOUND.into_response() };
    if !presents(&headers, secret.expose_secret()) {
        let mut response = (StatusCode::UNAUTHORIZED, Json(json!({ "error": "invalid_client" }))).into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"idgate\""));
        return response;
    }
    match state.services.auth.introspect(&request.token).await {
        Ok(None) => Json(json!({ "active": false })).into_response(),
        Ok(Some(info)) => Json(json!({
            "active": true,
            "sub": info.subject.to_string(),
            "sid": info.session_id.to_string(),
            "role": info.role.as_str(),
            "iat": info.issued_at.timestamp(),
            "exp": info.expires_at.timestamp(),
            "token_type": match info.token_type {
                TokenType::Access => "access_token",
                TokenType::Refresh => "refresh_token",
            },
            "iss": state.issuer,
        }))
        .into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "introspection failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": "temporarily_unavailable" }))).into_response()
        }
    }
}

/// Whether the request carries the secret: as the Basic password (any user name) or as a
/// bearer token, compared in constant time.
fn presents(headers: &HeaderMap, secret: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    let presented = if let Some(basic) = value.strip_prefix("Basic ") {
        let decoded = STANDARD.decode(basic.trim()).ok().and_then(|d| String::from_utf8(d).ok()).unwrap_or_default();
        decoded.split_once(':').map(|(_, password)| password.to_owned()).unwrap_or_default()
    } else if let Some(bearer) = value.strip_prefix("Bearer ") {
        bearer.trim().to_owned()
    } else {
        return false;
    };
    constant_time_eq(presented.as_bytes(), secret.as_bytes())
}
