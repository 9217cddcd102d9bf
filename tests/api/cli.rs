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
