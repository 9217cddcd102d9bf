//! A CAPTCHA siteverify endpoint on 127.0.0.1, shaped like reCAPTCHA's, hCaptcha's and
//! Turnstile's: it takes a form POST (`secret`, `response`, `remoteip`), records it, and judges
//! the token by its text: `human` passes, `bot` fails, `score-0.3` / `score-0.9` pass with that
//! reCAPTCHA v3 score, anything else fails. A wrong secret fails like the real ones.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use axum::{Form, Json, Router, extract::State, routing::post};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};

pub const SECRET: &str = "test-captcha-secret";

/// The forms received, oldest first.
type Calls = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// A running endpoint; stops when dropped.
pub struct Siteverify {
    /// The URL to configure as `captcha_verify_url`.
    pub url: String,
    calls: Calls,
    task: JoinHandle<()>,
}

impl Siteverify {
    pub async fn start() -> Siteverify {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("siteverify bind: {e}"));
        let port = listener.local_addr().unwrap_or_else(|e| panic!("siteverify address: {e}")).port();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new().route("/siteverify", post(judge)).with_state(Arc::clone(&calls));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Siteverify { url: format!("http://127.0.0.1:{port}/siteverify"), calls, task }
    }

    /// Every form received so far, oldest first.
    pub fn calls(&self) -> Vec<HashMap<String, String>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for Siteverify {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn judge(State(calls): State<Calls>, Form(form): Form<HashMap<String, String>>) -> Json<Value> {
    calls.lock().unwrap_or_else(PoisonError::into_inner).push(form.clone());
    if form.get("secret").map(String::as_str) != Some(SECRET) {
        return Json(json!({ "success": false, "error-codes": ["invalid-input-secret"] }));
    }
    Json(match form.get("response").map(String::as_str) {
        Some("human") => json!({ "success": true, "hostname": "localhost" }),
        Some("score-0.3") => json!({ "success": true, "score": 0.3, "action": "login" }),
        Some("score-0.9") => json!({ "success": true, "score": 0.9, "action": "login" }),
        _ => json!({ "success": false, "error-codes": ["invalid-input-response"] }),
    })
}
