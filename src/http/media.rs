//! GET /media/{file}: stored avatars, read-only. Only names idgate generates are looked up (see
//! `AvatarName`), so a path can never leave the media directory; anything else is 404.
//! Files never change under a name, so they are cached for good; `nosniff` and a sandboxing
//! CSP keep a browser from treating one as anything but an image.

use std::sync::Arc;

use axum::{
    extract::{Path, State, rejection::PathRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::HttpState;
use crate::media::model::AvatarName;

/// Serves one stored avatar.
pub async fn avatar(State(state): State<Arc<HttpState>>, file: Result<Path<String>, PathRejection>) -> Response {
    // A path that does not even decode (bad UTF-8) is as unknown as any other.
    let Some(name) = file.ok().and_then(|Path(file)| AvatarName::parse(&file)) else { return not_found() };
    match state.services.media.read(&name).await {
        Ok(Some(bytes)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(name.content_type())),
                (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
                (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
                (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox")),
            ],
            bytes,
        )
            .into_response(),
        Ok(None) => not_found(),
        Err(e) => {
            tracing::error!(error = %e, "could not read a stored avatar");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}
