//! Every response says `nosniff`.

use reqwest::{StatusCode, header::HeaderMap};
use serde_json::json;

use crate::helpers::TestApp;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

#[tokio::test]
async fn every_response_says_nosniff() {
    let app = TestApp::spawn().await;
    let json_answer = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": "{ authConfig { loginRequiresOtp } }" }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json_answer.status(), StatusCode::OK);
    assert_eq!(header(json_answer.headers(), "x-content-type-options"), "nosniff");

    for path in ["/graphql", "/verify-email", "/reset-password", "/healthz", "/no-such-page"] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(header(response.headers(), "x-content-type-options"), "nosniff", "{path}");
    }
}
