//! Several instances on one database and one KV (PostgreSQL + Redis in production; the same
//! SQLite file and its KV table in the embedded setup): every rule holds across them.

use std::sync::Arc;

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, error_code, fresh_database, tokens, wrong_code};

#[tokio::test]
async fn a_logout_or_deactivation_on_one_instance_kills_the_token_on_the_other_at_once() {
    let a = TestApp::spawn().await;
    let b = a.sibling().await;
    let root = a.superuser("root@example.com").await;
    let alice = a.signed_in("alice@example.com").await;
    assert!(b.me(&alice.access).await["errors"].is_null(), "B accepts A's token");
    let logout = a.gql_as(&alice.access, "mutation { logout }", json!({})).await;
    assert!(logout["errors"].is_null(), "{logout}");
    assert_eq!(error_code(&b.me(&alice.access).await), "UNAUTHENTICATED");

    let bob = b.signed_in("bob@example.com").await;
    let bob_id = a.gql_as(&bob.access, "{ me { id } }", json!({})).await["data"]["me"]["id"].clone();
    let both = a.gql_as(&bob.access, "mutation { logoutAll }", json!({})).await;
    assert!(both["errors"].is_null(), "{both}");
    assert_eq!(error_code(&b.me(&bob.access).await), "UNAUTHENTICATED");
    let bob = b.log_in("bob@example.com").await;
    let off = a
        .gql_as(
            &root.access,
            "mutation($id: ID!) { deactivateUser(id: $id) { user { isActive } } }",
            json!({ "id": bob_id }),
        )
        .await;
    assert!(off["errors"].is_null(), "{off}");
    assert_eq!(error_code(&b.me(&bob.access).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn limits_and_code_attempts_are_counted_across_instances() {
    let a = TestApp::spawn_with(&[("login_rate_per_ip", json!(4))]).await;
    let b = a.sibling().await;
    for app in [&a, &b, &a, &b] {
        let answer = app.login("nobody@example.com", "wrong password here").await;
        assert_eq!(error_code(&answer), "INVALID_CREDENTIALS", "{answer}");
    }
    assert_eq!(error_code(&b.login("nobody@example.com", "wrong password here").await), "RATE_LIMITED");
    assert_eq!(error_code(&a.login("nobody@example.com", "wrong password here").await), "RATE_LIMITED");

    let c = TestApp::spawn_with(&[("otp_max_attempts", json!(5))]).await;
    let d = c.sibling().await;
    c.register_verified("carol@example.com", PASSWORD).await;
    let (challenge, code) = c.login_challenge("carol@example.com").await;
    for app in [&c, &d, &c, &d, &c] {
        let answer = app.verify_otp(&challenge, wrong_code(&code)).await;
        assert_eq!(error_code(&answer), "OTP_INVALID", "{answer}");
    }
    let too_late = d.verify_otp(&challenge, &code).await;
    assert_eq!(error_code(&too_late), "OTP_INVALID", "five wrong tries over two instances kill the code: {too_late}");
}

#[tokio::test]
async fn a_challenge_started_on_one_instance_finishes_on_another_and_reuse_is_seen_everywhere() {
    let a = TestApp::spawn().await;
    let b = a.sibling().await;
    a.register_verified("dave@example.com", PASSWORD).await;
    let (challenge, code) = a.login_challenge("dave@example.com").await;
    let verified = b.verify_otp(&challenge, &code).await;
    let first = tokens(&verified["data"]["verifyOtp"]);

    let rotated = tokens(&a.refresh(&first.refresh).await["data"]["refresh"]);
    assert_eq!(error_code(&b.refresh(&first.refresh).await), "UNAUTHENTICATED", "B sees the reuse");
    assert_eq!(error_code(&a.me(&rotated.access).await), "UNAUTHENTICATED", "and the session ended everywhere");
    assert_eq!(error_code(&a.refresh(&rotated.refresh).await), "UNAUTHENTICATED");
}

/// Three instances starting at the same moment on an empty database: migrations run once, one
/// signing key and one code secret are made, and all three use them.
#[tokio::test]
async fn three_instances_cold_starting_together_share_one_schema_and_one_set_of_keys() {
    let dir = Arc::new(tempfile::TempDir::new().unwrap_or_else(|e| panic!("{e}")));
    let url = fresh_database(dir.path()).await;
    // One Redis prefix for the three (used only on the PostgreSQL + Redis setup).
    let prefix = format!("idgate-test:{}:", uuid::Uuid::new_v4().simple());
    let settings =
        [("public_url", json!("http://idgate.test")), ("login_otp", json!("off")), ("redis_prefix", json!(prefix))];
    let (one, two, three) = tokio::join!(
        TestApp::spawn_on(Arc::clone(&dir), url.clone(), &settings, false),
        TestApp::spawn_on(Arc::clone(&dir), url.clone(), &settings, false),
        TestApp::spawn_on(Arc::clone(&dir), url.clone(), &settings, false),
    );
    let jwks = |app: &TestApp| {
        let request = app.client.get(format!("{}/.well-known/jwks.json", app.address)).send();
        async move { request.await.unwrap_or_else(|e| panic!("{e}")).text().await.unwrap_or_default() }
    };
    let published = jwks(&one).await;
    assert_eq!(published.matches("\"kid\"").count(), 1, "one signing key: {published}");
    assert_eq!(jwks(&two).await, published);
    assert_eq!(jwks(&three).await, published);

    // Codes hashed on one instance verify on another: one code secret.
    two.register("erin@example.com", PASSWORD).await;
    let code = two.last_code_for("erin@example.com");
    let verified = three.verify_email_code("erin@example.com", &code).await;
    assert!(verified["errors"].is_null(), "{verified}");
    let login = one.login("erin@example.com", PASSWORD).await;
    let session = tokens(&login["data"]["login"]);
    assert!(three.me(&session.access).await["errors"].is_null());
}
