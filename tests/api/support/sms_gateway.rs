//! A mock of the Twilio Messages API on 127.0.0.1: it records every POST to
//! `/2010-04-01/Accounts/{sid}/Messages.json` (form fields and `Authorization` header) and
//! answers 201 with a small JSON body, or 500 when started failing. Any other request is a 404,
//! which the sender reports as a failure.

use std::sync::{Arc, Mutex, PoisonError};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header::AUTHORIZATION},
    routing::post,
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};

/// One request as the gateway saw it. Missing fields are empty strings.
#[derive(Debug, Clone)]
pub struct RecordedSms {
    pub to: String,
    pub from: String,
    pub body: String,
    /// The raw `Authorization` header (`Basic <base64 sid:token>`).
    pub authorization: String,
}

/// A running gateway; stops when dropped.
pub struct SmsGateway {
    /// The base URL to configure as the gateway (`http://127.0.0.1:<port>`).
    pub url: String,
    sent: Arc<Mutex<Vec<RecordedSms>>>,
    task: JoinHandle<()>,
}

#[derive(Clone)]
struct Mock {
    fail: bool,
    sent: Arc<Mutex<Vec<RecordedSms>>>,
}

impl SmsGateway {
    /// Listens on a free port; with `fail`, every request is recorded and answered 500.
    pub async fn start(fail: bool) -> SmsGateway {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("SMS gateway bind: {e}"));
        let port = listener.local_addr().unwrap_or_else(|e| panic!("SMS gateway address: {e}")).port();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(record))
            .with_state(Mock { fail, sent: Arc::clone(&sent) });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        SmsGateway { url: format!("http://127.0.0.1:{port}"), sent, task }
    }

    /// Every request received so far, oldest first.
    pub fn messages(&self) -> Vec<RecordedSms> {
        self.sent.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for SmsGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(mock): State<Mock>, headers: HeaderMap, form: String) -> (StatusCode, Json<Value>) {
    let field = |name: &str| {
        url::form_urlencoded::parse(form.as_bytes()).find(|(key, _)| key == name).map(|(_, v)| v.into_owned())
    };
    let sms = RecordedSms {
        to: field("To").unwrap_or_default(),
        from: field("From").unwrap_or_default(),
        body: field("Body").unwrap_or_default(),
        authorization: headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned(),
    };
    let to = sms.to.clone();
    mock.sent.lock().unwrap_or_else(PoisonError::into_inner).push(sms);
    if mock.fail {
        let error = json!({ "code": 20500, "message": "Internal Server Error", "status": 500 });
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(error));
    }
    (StatusCode::CREATED, Json(json!({ "sid": "SM00000000000000000000000000000000", "status": "queued", "to": to })))
}
