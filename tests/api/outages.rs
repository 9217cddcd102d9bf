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

/// PostgreSQL drops every connection of the pool (a restart, a failover, an operator's
/// `pg_terminate_backend`) while requests run: they fail cleanly or succeed, and the pool
/// recovers on its own. SQLite has no server connections to lose, so this runs on the
/// PostgreSQL setup.
#[tokio::test]
async fn killed_database_connections_fail_requests_cleanly_and_the_pool_recovers() {
    let Ok(server) = std::env::var("IDGATE_TEST_DATABASE_URL") else { return };
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn().await;
    let tokens = app.signed_in("ada@example.com").await;
    let database = app.database_url.rsplit('/').next().unwrap_or_default().to_owned();
    let admin = sea_orm::Database::connect(&server).await.unwrap_or_else(|e| panic!("{e}"));
    let kill = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    );

    let load = async {
        let mut outcomes = Vec::new();
        for _ in 0..40 {
            let response = app
                .client
                .post(format!("{}/graphql", app.address))
                .bearer_auth(&tokens.access)
                .json(&json!({ "query": "{ me { email } }" }))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or_else(|e| panic!("{e}"));
            outcomes.push((status, body));
        }
        outcomes
    };
    let killing = async {
        for _ in 0..3 {
            tokio::time::sleep(std::time::Duration::from_millis(15)).await;
            admin.execute_unprepared(&kill).await.unwrap_or_else(|e| panic!("{e}"));
        }
    };
    let (outcomes, ()) = tokio::join!(load, killing);
    for (status, body) in &outcomes {
        assert_eq!(*status, 200, "{body}");
        let clean = body["errors"].is_null() && body["data"]["me"]["email"] == "ada@example.com"
            || (error_code(body) == "INTERNAL" && body["errors"][0]["message"] == "internal error");
        assert!(clean, "a request during the outage either works or fails without detail: {body}");
    }

    // Afterwards, the pool has replaced its connections: everything works, no restart.
    admin.execute_unprepared(&kill).await.unwrap_or_else(|e| panic!("{e}"));
    let mut recovered = false;
    for _ in 0..20 {
        if app.me(&tokens.access).await["errors"].is_null() && readyz(&app).await.0 == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "the pool recovers on its own");
    let (status, body) = post(&app, "mutation { logoutAll }", json!({})).await;
    assert_eq!(status, 200, "{body}");
}
