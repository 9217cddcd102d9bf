//! Liveness and readiness probes.

use std::sync::Arc;

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use super::HttpState;

/// The process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The database and the KV answer and the instance is not stopping; 503 naming the failing
/// part otherwise.
pub async fn readyz(State(state): State<Arc<HttpState>>) -> (StatusCode, Json<Value>) {
    if state.stopping.load(std::sync::atomic::Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "stopping" })));
    }
    let database = state.services.db.ping().await.is_ok();
    let kv = state.services.kv.ping().await.is_ok();
    let status = if database && kv { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    (status, Json(json!({ "database": word(database), "kv": word(kv) })))
}
