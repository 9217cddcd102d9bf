use chrono::Duration;
use serde_json::json;

use crate::helpers::{TestApp, error_code, tokens};

const SESSIONS: &str = "{ mySessions { id deviceName userAgent ip current createdAt lastUsedAt expiresAt } }";

#[tokio::test]
async fn refresh_rotates_the_refresh_token_and_issues_a_new_access_token() {
    let app = TestApp::spawn().await;
    let first = app.signed_in("alice@example.com").await;
    app.clock.advance(Duration::seconds(5));
    let refreshed = app.refresh(&first.refresh).await;
    let second = tokens(&refreshed["data"]["refresh"]);
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.access, first.access);
    assert_eq!(second.session_id, first.session_id, "the same session continues");
    assert_eq!(app.me(&second.access).await["data"]["me"]["email"], "alice@example.com");
    let again = app.refresh(&second.refresh).await;
    assert!(again["errors"].is_null(), "the new token works: {again}");
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_session() {
    let app = TestApp::spawn().await;
    let first = app.signed_in("alice@example.com").await;
    let second = tokens(&app.refresh(&first.refresh).await["data"]["refresh"]);
    let replay = app.refresh(&first.refresh).await;
    assert_eq!(error_code(&replay), "UNAUTHENTICATED");
    // The thief's replay ended the session: the legitimate holder's tokens die too.
    assert_eq!(error_code(&app.refresh(&second.refresh).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.me(&second.access).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_rotated_token_still_works_within_the_configured_grace_period() {
    let app = TestApp::spawn_with(&[("refresh_reuse_grace_secs", json!(10))]).await;
    let first = app.signed_in("alice@example.com").await;
    let a = tokens(&app.refresh(&first.refresh).await["data"]["refresh"]);
    let b = tokens(&app.refresh(&first.refresh).await["data"]["refresh"]);
    assert_eq!(a.refresh, b.refresh, "both racers continue with the same new token");
    assert!(app.refresh(&a.refresh).await["errors"].is_null());
}

#[tokio::test]
async fn a_forged_secret_for_a_real_session_is_refused_without_ending_it() {
    let app = TestApp::spawn().await;
    let user = app.signed_in("alice@example.com").await;
    let session = user.refresh.split('.').next().unwrap_or_default();
    let forged = format!("{session}.{}", "A".repeat(43));
    assert_eq!(error_code(&app.refresh(&forged).await), "UNAUTHENTICATED");
    for garbage in ["", "nonsense", "a.b", &format!("{session}.short")] {
        assert_eq!(error_code(&app.refresh(garbage).await), "UNAUTHENTICATED", "{garbage:?}");
    }
    assert!(app.refresh(&user.refresh).await["errors"].is_null(), "the owner is still logged in");
}

#[tokio::test]
async fn logout_kills_the_access_token_at_once() {
    let app = TestApp::spawn().await;
    let user = app.signed_in("alice@example.com").await;
    assert!(app.me(&user.access).await["errors"].is_null());
    let logout = app.gql_as(&user.access, "mutation { logout }", json!({})).await;
    assert_eq!(logout["data"]["logout"], true, "{logout}");
    assert_eq!(error_code(&app.me(&user.access).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.refresh(&user.refresh).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn logout_by_refresh_token_ends_that_session() {
    let app = TestApp::spawn().await;
    let user = app.signed_in("alice@example.com").await;
    let logout = app.gql("mutation($t: String) { logout(refreshToken: $t) }", json!({ "t": user.refresh })).await;
    assert_eq!(logout["data"]["logout"], true, "{logout}");
    assert_eq!(error_code(&app.me(&user.access).await), "UNAUTHENTICATED");
    let anonymous = app.gql("mutation { logout }", json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

#[tokio::test]
async fn logout_all_ends_every_session_and_counts_them() {
    let app = TestApp::spawn().await;
    let laptop = app.signed_in("alice@example.com").await;
    let phone = app.log_in("alice@example.com").await;
    let other_user = app.signed_in("bob@example.com").await;
    let response = app.gql_as(&laptop.access, "mutation { logoutAll }", json!({})).await;
    assert_eq!(response["data"]["logoutAll"], 2, "{response}");
    assert_eq!(error_code(&app.me(&laptop.access).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.me(&phone.access).await), "UNAUTHENTICATED");
    assert!(app.me(&other_user.access).await["errors"].is_null(), "other users are untouched");
}

#[tokio::test]
async fn my_sessions_lists_each_device_and_marks_the_current_one() {
    let app = TestApp::spawn().await;
    let laptop = app.signed_in("alice@example.com").await;
    let phone = app.log_in("alice@example.com").await;
    let response = app.gql_as(&phone.access, SESSIONS, json!({})).await;
    let sessions = response["data"]["mySessions"].as_array().cloned().unwrap_or_default();
    assert_eq!(sessions.len(), 2, "{response}");
    let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], phone.session_id.as_str());
    assert!(sessions.iter().any(|s| s["id"] == laptop.session_id.as_str()));
    assert!(sessions.iter().all(|s| s["userAgent"] == "idgate-tests/1.0" && s["ip"] == "127.0.0.1"));
    assert_eq!(error_code(&app.gql(SESSIONS, json!({})).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn revoke_session_ends_one_own_session_and_cannot_touch_others() {
    let app = TestApp::spawn().await;
    let laptop = app.signed_in("alice@example.com").await;
    let phone = app.log_in("alice@example.com").await;
    let bob = app.signed_in("bob@example.com").await;
    let revoke = "mutation($id: ID!) { revokeSession(id: $id) }";

    let foreign = app.gql_as(&bob.access, revoke, json!({ "id": laptop.session_id })).await;
    assert_eq!(error_code(&foreign), "NOT_FOUND");
    assert!(app.me(&laptop.access).await["errors"].is_null());

    let own = app.gql_as(&phone.access, revoke, json!({ "id": laptop.session_id })).await;
    assert_eq!(own["data"]["revokeSession"], true, "{own}");
    assert_eq!(error_code(&app.me(&laptop.access).await), "UNAUTHENTICATED");
    assert!(app.me(&phone.access).await["errors"].is_null());
}

#[tokio::test]
async fn a_session_ends_after_its_absolute_lifetime() {
    let app = TestApp::spawn_with(&[("session_idle_timeout_secs", json!(0))]).await;
    let user = app.signed_in("alice@example.com").await;
    app.clock.advance(Duration::days(30) + Duration::seconds(1));
    assert_eq!(error_code(&app.refresh(&user.refresh).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn an_idle_session_ends_after_the_inactivity_timeout_but_use_keeps_it_alive() {
    let app = TestApp::spawn_with(&[("session_idle_timeout_secs", json!(3600))]).await;
    let active = app.signed_in("alice@example.com").await;
    let idle = app.signed_in("bob@example.com").await;
    app.clock.advance(Duration::minutes(50));
    let active = tokens(&app.refresh(&active.refresh).await["data"]["refresh"]);
    app.clock.advance(Duration::minutes(50));
    assert!(app.refresh(&active.refresh).await["errors"].is_null());
    assert_eq!(error_code(&app.refresh(&idle.refresh).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_login_beyond_the_device_limit_ends_the_least_recently_used_session() {
    let app = TestApp::spawn_with(&[("max_sessions_per_user", json!(2))]).await;
    let root = app.superuser("root@example.com").await;
    let oldest = app.signed_in("alice@example.com").await;
    app.clock.advance(Duration::seconds(5));
    let middle = app.log_in("alice@example.com").await;
    app.clock.advance(Duration::seconds(5));
    // Using the oldest session makes the middle one the least recently used.
    assert!(app.refresh(&oldest.refresh).await["errors"].is_null());
    app.clock.advance(Duration::seconds(5));
    let newest = app.log_in("alice@example.com").await;

    assert_eq!(error_code(&app.me(&middle.access).await), "UNAUTHENTICATED", "its access token stops at once");
    assert_eq!(error_code(&app.refresh(&middle.refresh).await), "UNAUTHENTICATED");
    let listed = app.gql_as(&newest.access, SESSIONS, json!({})).await;
    let ids: Vec<&str> =
        listed["data"]["mySessions"].as_array().into_iter().flatten().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids.len(), 2, "{listed}");
    assert!(ids.contains(&newest.session_id.as_str()) && ids.contains(&oldest.session_id.as_str()), "{listed}");

    let trail = app
        .gql_as(
            &root.access,
            "{ auditEvents(first: 50, filter: { kind: SESSION_REVOKED }) { edges { node { detail } } } }",
            json!({}),
        )
        .await;
    let named = trail["data"]["auditEvents"]["edges"].as_array().into_iter().flatten().any(|e| {
        e["node"]["detail"]["reason"] == "session_limit" && e["node"]["detail"]["session"] == middle.session_id.as_str()
    });
    assert!(named, "the audit log names the ended session: {trail}");
}

#[tokio::test]
async fn parallel_logins_never_leave_more_sessions_than_the_limit() {
    let app = TestApp::spawn_with(&[("max_sessions_per_user", json!(2)), ("otp_rate_per_ip", json!(100))]).await;
    app.register_verified("bob@example.com", crate::helpers::PASSWORD).await;
    let mut pending = Vec::new();
    for _ in 0..6 {
        pending.push(app.login_challenge("bob@example.com").await);
    }
    let verified = futures::future::join_all(pending.iter().map(|(id, code)| app.verify_otp(id, code))).await;
    let mut alive = 0;
    for answer in &verified {
        assert!(answer["errors"].is_null(), "{answer}");
        if app.me(&tokens(&answer["data"]["verifyOtp"]).access).await["errors"].is_null() {
            alive += 1;
        }
    }
    assert_eq!(alive, 2, "exactly the limit survives six parallel logins");
}
