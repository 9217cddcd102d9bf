//! `/metrics` (Prometheus text) and structured logs with request ids. Metrics are counted per
//! process, and this test binary runs many apps at once: tests compare a counter before and
//! after their own requests.

use std::{
    io::Read,
    process::{Command, Stdio},
    sync::Arc,
};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{PASSWORD, TestApp, fresh_database};

async fn scrape(app: &TestApp, bearer: Option<&str>) -> (u16, String) {
    let mut request = app.client.get(format!("{}/metrics", app.address));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("{e}"));
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

/// The value of the sample line that starts with `series` (name and labels), or 0.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().split(' ').next()?.parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_need_the_token_on_the_public_port_and_count_what_happens() {
    let off = TestApp::spawn().await;
    assert_eq!(scrape(&off, None).await.0, 404, "off unless configured");

    let app = TestApp::spawn_with(&[("metrics_token", json!("scrape-me"))]).await;
    assert_eq!(scrape(&app, None).await.0, 401);
    assert_eq!(scrape(&app, Some("wrong")).await.0, 401);
    let (status, before) = scrape(&app, Some("scrape-me")).await;
    assert_eq!(status, 200);

    let refused = app.login("ghost@example.com", "not the password 1").await;
    assert!(refused["errors"].is_array());
    let alice = app.signed_in("alice@example.com").await;
    for _ in 0..3 {
        assert!(app.me(&alice.access).await["errors"].is_null());
    }
    let (_, after) = scrape(&app, Some("scrape-me")).await;
    let grew = |series: &str| sample(&after, series) > sample(&before, series);
    assert!(grew(r#"idgate_graphql_requests_total{operation="login",outcome="INVALID_CREDENTIALS"}"#), "{after}");
    assert!(grew(r#"idgate_graphql_requests_total{operation="me",outcome="ok"}"#));
    assert!(grew(r#"idgate_logins_total{method="login",outcome="invalid_credentials"}"#));
    assert!(grew(r#"idgate_logins_total{method="verifyOtp",outcome="success"}"#));
    assert!(grew(r#"idgate_codes_sent_total{channel="email"}"#));
    assert!(grew(r#"idgate_token_cache_lookups_total{result="hit"}"#));
    assert!(grew(r#"idgate_graphql_request_duration_seconds_count{operation="me"}"#));
    assert!(grew("idgate_hash_pool_wait_seconds_count"));
    assert!(after.contains("idgate_hash_pool_queue_depth"));
    assert!(after.contains(&format!(r#"idgate_build_info{{version="{}"}} 1"#, env!("CARGO_PKG_VERSION"))));
    assert!(!after.contains("example.com") && !after.contains(&alice.access), "no user data in metrics");

    // A field the schema lacks never becomes a label.
    let bogus = app.gql("{ noSuchFieldXyz }", json!({})).await;
    assert!(bogus["errors"].is_array());
    let (_, last) = scrape(&app, Some("scrape-me")).await;
    assert!(!last.contains("noSuchFieldXyz"), "{last}");
}

#[tokio::test]
async fn a_metrics_listener_serves_metrics_apart_from_the_public_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let app = TestApp::spawn_with(&[("metrics_listen", json!(format!("127.0.0.1:{port}")))]).await;
    assert_eq!(scrape(&app, None).await.0, 404, "not on the public port");
    let response = app.client.get(format!("http://127.0.0.1:{port}/metrics")).send().await;
    let response = response.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap_or_default().contains("idgate_build_info"));
}

#[tokio::test]
async fn every_response_names_its_request_id() {
    let app = TestApp::spawn().await;
    let id_of = |given: Option<&'static str>| {
        let mut request = app.client.get(format!("{}/healthz", app.address));
        if let Some(id) = given {
            request = request.header("x-request-id", id);
        }
        async move {
            let response = request.send().await.unwrap_or_else(|e| panic!("{e}"));
            response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
        }
    };
    let plain = |id: &str| (8..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let fresh = id_of(None).await;
    assert!(plain(&fresh), "{fresh}");
    assert_ne!(id_of(None).await, fresh, "each request gets its own");
    assert_eq!(id_of(Some("lb-1234.abc")).await, "lb-1234.abc", "a load balancer's id is kept");
    let forged = id_of(Some("x\" injected=1")).await;
    assert!(plain(&forged) && !forged.contains("injected"), "an id that is no plain token is replaced: {forged}");
}

/// IDGATE_LOG_FORMAT=json: one JSON object per line, with the request id, operation, caller and
/// outcome on the request's lines, and never a password, code or token.
#[tokio::test]
async fn json_logs_carry_the_request_and_no_secrets() {
    let dir = Arc::new(TempDir::new().unwrap_or_else(|e| panic!("{e}")));
    let url = fresh_database(dir.path()).await;
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut server = Command::new(env!("CARGO_BIN_EXE_idgate"))
        .env("RUST_LOG", "info")
        .env("IDGATE_LOG_FORMAT", "json")
        .env("IDGATE_DATABASE_URL", &url)
        .env("IDGATE_OUTBOX_DIR", dir.path().join("outbox"))
        .env("IDGATE_LISTEN", &listen)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run idgate: {e}"));
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("http://{listen}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let login = json!({
        "query": "mutation($i: LoginInput!) { login(input: $i) { __typename } }",
        "variables": { "i": { "email": "who@example.com", "password": PASSWORD } },
    });
    let answer = client
        .post(format!("http://{listen}/graphql"))
        .header("x-request-id", "trace-me-42")
        .json(&login)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.status(), 200);
    let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    let _ = server.wait();
    let mut output = String::new();
    if let Some(mut stdout) = server.stdout.take() {
        let _ = stdout.read_to_string(&mut output);
    }
    let lines: Vec<Value> = output
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let finished = lines
        .iter()
        .find(|line| line["span"]["request_id"] == "trace-me-42" && line["span"]["operation"] == "login")
        .unwrap_or_else(|| panic!("no line of the request: {output}"));
    assert_eq!(finished["span"]["outcome"], "INVALID_CREDENTIALS", "{finished}");
    assert!(!output.contains(PASSWORD) && !output.contains("who@example.com"), "{output}");
}
