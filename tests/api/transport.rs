use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code};

fn url(app: &TestApp) -> String {
    format!("{}/graphql", app.address)
}

#[tokio::test]
async fn a_query_over_get_runs() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(url(&app))
        .query(&[("query", "{ authConfig { loginRequiresOtp passwordPolicy { minLength maxLength } } }")])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap_or_default();
    assert_eq!(body["data"]["authConfig"]["loginRequiresOtp"], true);
    assert_eq!(body["data"]["authConfig"]["passwordPolicy"]["minLength"], 12);
    assert_eq!(body["data"]["authConfig"]["passwordPolicy"]["maxLength"], 128);
}

#[tokio::test]
async fn a_mutation_over_get_is_405_with_allow_post_and_does_not_run() {
    let app = TestApp::spawn().await;
    let mutation = "mutation { register(input: { email: \"g@example.com\", password: \"correct horse battery staple 93\" }) { user { id } } }";
    let response =
        app.client.get(url(&app)).query(&[("query", mutation)]).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
    let retry = app.register("g@example.com", "correct horse battery staple 93").await;
    assert!(retry["errors"].is_null(), "the GET did not create the user: {retry}");
    assert!(
        app.mails_to("g@example.com").iter().all(|m| !m.contains("Someone tried")),
        "no taken-address notice: the GET never ran"
    );
}

#[tokio::test]
async fn other_methods_are_405() {
    let app = TestApp::spawn().await;
    for method in [Method::PUT, Method::DELETE, Method::PATCH] {
        let response = app
            .client
            .request(method.clone(), url(&app))
            .json(&json!({ "query": "{ authConfig { otpTtl } }" }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
}

#[tokio::test]
async fn bodies_that_are_not_json_are_415() {
    let app = TestApp::spawn().await;
    let body = r#"{"query":"{ authConfig { otpTtl } }"}"#;
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let mut request = app.client.post(url(&app)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type:?}");
    }
}

#[tokio::test]
async fn batched_arrays_malformed_json_and_oversized_bodies_are_refused() {
    let app = TestApp::spawn().await;
    let send = |body: String| app.client.post(url(&app)).header("content-type", "application/json").body(body).send();
    let batch = send(r#"[{"query":"{ authConfig { otpTtl } }"},{"query":"{ authConfig { otpTtl } }"}]"#.into()).await;
    assert_eq!(batch.unwrap_or_else(|e| panic!("{e}")).status(), StatusCode::BAD_REQUEST);
    let malformed = send("{\"query\": ".into()).await;
    assert_eq!(malformed.unwrap_or_else(|e| panic!("{e}")).status(), StatusCode::BAD_REQUEST);
    let huge =
        format!(r#"{{"query":"{{ authConfig {{ otpTtl }} }}","variables":{{"x":"{}"}}}}"#, "a".repeat(70 * 1024));
    let oversized = send(huge).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_response_media_type_follows_accept() {
    let app = TestApp::spawn().await;
    let post = |accept: &'static str, query: &'static str| {
        app.client.post(url(&app)).header("accept", accept).json(&json!({ "query": query })).send()
    };
    let modern =
        post("application/graphql-response+json", "{ authConfig { otpTtl } }").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(modern.status(), StatusCode::OK);
    assert_eq!(modern.headers()["content-type"], "application/graphql-response+json");
    assert_eq!(modern.headers()["cache-control"], "no-store");

    let invalid =
        post("application/graphql-response+json", "{ authConfig { nope } }").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST, "a request error is 400 in the new media type");
    let body: Value = invalid.json().await.unwrap_or_default();
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED");

    let legacy = post("application/json", "{ authConfig { nope } }").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(legacy.status(), StatusCode::OK, "application/json always answers 200");
    assert_eq!(legacy.headers()["content-type"], "application/json");

    let unacceptable = post("text/html", "{ authConfig { otpTtl } }").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(unacceptable.status(), StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn a_browser_get_opens_graphiql() {
    let app = TestApp::spawn().await;
    let response =
        app.client.get(url(&app)).header("accept", "text/html").send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap_or_default();
    assert!(page.contains("graphiql"), "{page}");
}

#[tokio::test]
async fn deeply_nested_queries_are_refused() {
    let app = TestApp::spawn().await;
    let deep = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(20),
        "} ".repeat(20)
    );
    let response = app.gql(&deep, json!({})).await;
    assert_eq!(error_code(&response), "GRAPHQL_VALIDATION_FAILED", "{response}");
}

#[tokio::test]
async fn health_and_readiness_probes_answer() {
    let app = TestApp::spawn().await;
    let health = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.client.get(format!("{}/readyz", app.address)).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap_or_default();
    assert_eq!(body, json!({ "database": "ok", "kv": "ok" }));
}

#[tokio::test]
async fn cross_origin_calls_are_allowed_only_from_configured_origins() {
    let app = TestApp::spawn_with(&[("cors_origins", json!("https://app.example.com"))]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, url(&app))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        allowed.headers().get("access-control-allow-origin").map(|v| v.as_bytes()),
        Some(&b"https://app.example.com"[..])
    );
    let denied = preflight("https://evil.example.net").await.unwrap_or_else(|e| panic!("{e}"));
    assert!(denied.headers().get("access-control-allow-origin").is_none());
}
