use std::{
    process::{Command, Output},
    sync::Arc,
};

use serde_json::json;
use tempfile::TempDir;

use crate::helpers::{PASSWORD, TestApp, fresh_database};

fn idgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_idgate"));
    command.args(args).env("RUST_LOG", "warn");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap_or_else(|e| panic!("cannot run idgate: {e}"))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn create_superuser_makes_an_account_that_logs_in_as_superuser_and_refuses_a_second_time() {
    let dir = Arc::new(TempDir::new().unwrap_or_else(|e| panic!("{e}")));
    let url = fresh_database(dir.path()).await;
    let outbox = dir.path().join("outbox").display().to_string();
    let env = [
        ("IDGATE_DATABASE_URL", url.as_str()),
        ("IDGATE_OUTBOX_DIR", &outbox),
        ("IDGATE_SUPERUSER_PASSWORD", PASSWORD),
    ];

    let created = idgate(&["create-superuser", "--email", "root@example.com"], &env);
    assert!(created.status.success(), "{}", stderr(&created));
    let again = idgate(&["create-superuser", "--email", "root@example.com"], &env);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--promote"), "{}", stderr(&again));

    let app = TestApp::spawn_on(dir, url, &[], false).await;
    let root = app.log_in("root@example.com").await;
    let me = app.gql_as(&root.access, "{ me { email role } }", json!({})).await;
    assert_eq!(me["data"]["me"]["role"], "SUPERUSER", "{me}");
}

#[tokio::test]
async fn create_superuser_promote_raises_an_existing_account() {
    let app = TestApp::spawn().await;
    app.register_verified("carol@example.com", PASSWORD).await;
    let before = app.log_in("carol@example.com").await;
    assert_eq!(app.gql_as(&before.access, "{ me { role } }", json!({})).await["data"]["me"]["role"], "USER");
    // The CLI talks to the same database the app uses.
    let url = app.database_url.clone();
    let outbox = app.outbox.display().to_string();
    let env = [
        ("IDGATE_DATABASE_URL", url.as_str()),
        ("IDGATE_OUTBOX_DIR", &outbox),
        ("IDGATE_SUPERUSER_PASSWORD", "unused"),
    ];
    let promoted = idgate(&["create-superuser", "--email", "carol@example.com", "--promote"], &env);
    assert!(promoted.status.success(), "{}", stderr(&promoted));
    assert_eq!(app.gql_as(&before.access, "{ me { role } }", json!({})).await["data"]["me"]["role"], "SUPERUSER");
}

#[test]
fn a_bad_setting_stops_the_server_naming_the_variable() {
    let output = idgate(&["serve"], &[("IDGATE_LOGIN_OTP", "carrier-pigeon")]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("IDGATE_LOGIN_OTP"), "{}", stderr(&output));
}

#[test]
fn schema_prints_the_sdl() {
    let output = idgate(&["schema"], &[]);
    assert!(output.status.success());
    let sdl = String::from_utf8_lossy(&output.stdout);
    assert!(sdl.contains("login(input: LoginInput!): LoginResult!"), "{sdl}");
}

/// SIGTERM as a load balancer needs it: /readyz turns 503 at once while requests are still
/// served for the shutdown delay, requests in flight finish, then the process exits cleanly.
#[tokio::test]
async fn sigterm_reports_unready_first_lets_requests_finish_then_exits() {
    let dir = Arc::new(TempDir::new().unwrap_or_else(|e| panic!("{e}")));
    let url = fresh_database(dir.path()).await;
    let outbox = dir.path().join("outbox").display().to_string();
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut server = Command::new(env!("CARGO_BIN_EXE_idgate"))
        .env("RUST_LOG", "warn")
        .env("IDGATE_DATABASE_URL", &url)
        .env("IDGATE_OUTBOX_DIR", &outbox)
        .env("IDGATE_LISTEN", &listen)
        .env("IDGATE_SHUTDOWN_DELAY_SECS", "2")
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run idgate: {e}"));
    let base = format!("http://{listen}");
    let client = reqwest::Client::new();
    let status = |path: &'static str| {
        let request = client.get(format!("{base}{path}")).send();
        async move { request.await.map(|r| r.status().as_u16()).unwrap_or(0) }
    };
    for _ in 0..100 {
        if status("/healthz").await == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status("/readyz").await, 200);

    // A registration (a password hash: tens of milliseconds) is in flight when the signal comes.
    let register = client
        .post(format!("{base}/graphql"))
        .json(&json!({
            "query": "mutation($i: RegisterInput!) { register(input: $i) { user { email } } }",
            "variables": { "i": { "email": "late@example.com", "password": PASSWORD } },
        }))
        .send();
    let in_flight = tokio::spawn(register);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let signalled = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    assert!(signalled.is_ok_and(|s| s.success()));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(status("/readyz").await, 503, "unready as soon as the stop begins");
    assert_eq!(status("/healthz").await, 200, "still serving during the delay");

    let answered = in_flight.await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answered.status().as_u16(), 200);
    let body: serde_json::Value = answered.json().await.unwrap_or_default();
    assert_eq!(body["data"]["register"]["user"]["email"], "late@example.com", "{body}");

    let mut exited = None;
    for _ in 0..100 {
        if let Ok(Some(code)) = server.try_wait() {
            exited = Some(code);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(exited.is_some_and(|code| code.success()), "exits cleanly after the delay: {exited:?}");
    assert_eq!(status("/healthz").await, 0, "and no longer listens");
}
