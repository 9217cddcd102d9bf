//! Redis unreachable: what needs shared state (limits, codes) refuses with SERVICE_UNAVAILABLE
//! and a 503 instead of running unlimited; what the database alone answers keeps working; and
//! idgate recovers when Redis is back, without a restart.

use serde_json::{Value, json};

use crate::{
    helpers::{LOGIN, PASSWORD, TestApp, error_code},
    support::redis_server::RedisServer,
};

async fn post(app: &TestApp, query: &str, variables: Value) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_else(|e| panic!("{e}")))
}

async fn readyz(app: &TestApp) -> (u16, Value) {
    let response = app.client.get(format!("{}/readyz", app.address)).send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_else(|e| panic!("{e}")))
}

#[tokio::test]
async fn with_redis_down_limited_operations_refuse_with_503_and_recover_when_it_returns() {
    let Some(mut redis) = RedisServer::start().await else { return };
    let app = TestApp::spawn_with(&[("redis_url", json!(redis.url())), ("redis_prefix", json!("outage:"))]).await;
    let tokens = app.signed_in("ada@example.com").await;
    assert_eq!(readyz(&app).await.0, 200);

    redis.stop();
    let login = json!({ "input": { "email": "ada@example.com", "password": PASSWORD, "deviceName": "laptop" } });
    let (status, body) = post(&app, LOGIN, login.clone()).await;
    assert_eq!((status, error_code(&body).as_str()), (503, "SERVICE_UNAVAILABLE"), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(!message.to_lowercase().contains("redis") && !message.contains("127.0.0.1"), "no internals: {message}");
    // Registering needs its limits too: refused.
    let (status, body) = post(
        &app,
        "mutation($input: RegisterInput!) { register(input: $input) { user { id } } }",
        json!({ "input": { "email": "grace@example.com", "password": PASSWORD } }),
    )
    .await;
    assert_eq!((status, error_code(&body).as_str()), (503, "SERVICE_UNAVAILABLE"), "{body}");
    // A session lives in the database: the signed-in user still reads their account.
    let me = app.me(&tokens.access).await;
    assert_eq!(me["data"]["me"]["email"], "ada@example.com", "{me}");
    let (status, ready) = readyz(&app).await;
    assert_eq!((status, ready["kv"].as_str()), (503, Some("unavailable")), "{ready}");

    redis.start_again().await;
    let (status, body) = post(&app, LOGIN, login).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["login"]["challengeId"].is_string(), "{body}");
    let registered = app.register("grace@example.com", PASSWORD).await;
    assert!(registered["errors"].is_null(), "{registered}");
    assert_eq!(readyz(&app).await.0, 200);
}
