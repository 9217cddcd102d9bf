//! Account lockout: five wrong passwords (or login codes) within 15 minutes lock an account;
//! only someone with the right password learns it is locked; the owner is mailed a way back in.

use chrono::Duration;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, error_code, link_in, wrong_code};

const WRONG: &str = "not the password at all 7";
const NEW_PASSWORD: &str = "a brand new passphrase 77";
const AUDIT: &str =
    "query($f: AuditEventFilter) { auditEvents(first: 100, filter: $f) { edges { node { kind detail } } } }";

async fn fail_five_times(app: &TestApp, email: &str) {
    for _ in 0..5 {
        assert_eq!(error_code(&app.login(email, WRONG).await), "INVALID_CREDENTIALS");
    }
}

fn retry_after(response: &Value) -> u64 {
    response["errors"][0]["extensions"]["retryAfter"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account_and_only_the_right_password_learns_it() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    fail_five_times(&app, "alice@example.com").await;
    let right = app.login("alice@example.com", PASSWORD).await;
    assert_eq!(error_code(&right), "ACCOUNT_LOCKED", "{right}");
    assert!((890..=900).contains(&retry_after(&right)), "{right}");
    let wrong = app.login("alice@example.com", WRONG).await;
    assert_eq!(error_code(&wrong), "INVALID_CREDENTIALS", "a wrong password tells nothing about the lock");
    // An unknown address is counted the same way and never looks locked.
    for _ in 0..7 {
        let unknown = app.login("nobody@example.com", PASSWORD).await;
        assert_eq!(unknown["errors"], wrong["errors"], "unknown addresses answer like wrong passwords");
    }
    app.clock.advance(Duration::seconds(901));
    assert_eq!(app.login("alice@example.com", PASSWORD).await["data"]["login"]["__typename"], "OtpChallenge");
}

#[tokio::test]
async fn a_right_password_forgets_the_failures_and_the_hourly_count_before_it() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    // 25 checks in a few seconds: past both the lock (5 failures) and the hourly cap on password
    // checks per address (20), unless each success forgets both counts.
    for round in 0..5 {
        for _ in 0..4 {
            assert_eq!(error_code(&app.login("alice@example.com", WRONG).await), "INVALID_CREDENTIALS");
        }
        let right = app.login("alice@example.com", PASSWORD).await;
        assert_eq!(right["data"]["login"]["__typename"], "OtpChallenge", "round {round}: {right}");
    }
}

#[tokio::test]
async fn the_owner_is_mailed_when_the_account_locks_and_the_reset_link_unlocks_it() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let before = app.mails_to("alice@example.com").len();
    fail_five_times(&app, "alice@example.com").await;
    let mails = app.wait_for_mails("alice@example.com", before + 1).await;
    let notice = mails.last().unwrap_or_else(|| panic!("no lock notice"));
    assert!(notice.contains("locked"), "{notice}");
    let (link, token) = link_in(notice).unwrap_or_else(|| panic!("no link in {notice}"));
    assert!(link.contains("/reset-password?token="), "{link}");
    let reset = app
        .gql(
            "mutation($input: ResetPasswordInput!) { resetPassword(input: $input) }",
            json!({ "input": { "token": token, "newPassword": NEW_PASSWORD } }),
        )
        .await;
    assert_eq!(reset["data"]["resetPassword"], true, "{reset}");
    let login = app.login("alice@example.com", NEW_PASSWORD).await;
    assert_eq!(login["data"]["login"]["__typename"], "OtpChallenge", "the reset unlocked: {login}");
}

#[tokio::test]
async fn an_admin_sees_the_lock_and_unlocks_the_account() {
    let app = TestApp::spawn().await;
    let root = app.superuser("root@example.com").await;
    let alice = app.signed_in("alice@example.com").await;
    let id = app.gql_as(&alice.access, "{ me { id lockedUntil } }", json!({})).await["data"]["me"]["id"].clone();
    fail_five_times(&app, "alice@example.com").await;
    let own = app.gql_as(&alice.access, "{ me { lockedUntil } }", json!({})).await;
    assert!(own["data"]["me"]["lockedUntil"].is_string(), "the owner sees the lock: {own}");
    let seen = app.gql_as(&root.access, "query($id: ID!) { user(id: $id) { lockedUntil } }", json!({ "id": id })).await;
    assert!(seen["data"]["user"]["lockedUntil"].is_string(), "{seen}");
    let stranger = app.signed_in("bob@example.com").await;
    let hidden =
        app.gql_as(&stranger.access, "query($id: ID!) { user(id: $id) { lockedUntil } }", json!({ "id": id })).await;
    assert!(hidden["data"]["user"]["lockedUntil"].is_null(), "{hidden}");

    let unlocked = app
        .gql_as(
            &root.access,
            "mutation($id: ID!) { unlockUser(id: $id) { user { lockedUntil } } }",
            json!({ "id": id }),
        )
        .await;
    assert!(unlocked["errors"].is_null(), "{unlocked}");
    assert!(unlocked["data"]["unlockUser"]["user"]["lockedUntil"].is_null(), "{unlocked}");
    assert_eq!(app.login("alice@example.com", PASSWORD).await["data"]["login"]["__typename"], "OtpChallenge");
    let trail = app.gql_as(&root.access, AUDIT, json!({ "f": { "userId": id } })).await.to_string();
    assert!(trail.contains("ACCOUNT_LOCKED") && trail.contains("ACCOUNT_UNLOCKED"), "{trail}");
}

#[tokio::test]
async fn a_hundred_parallel_wrong_passwords_lock_once_and_verify_at_most_five() {
    let app = TestApp::spawn_with(&[("login_rate_per_ip", json!(1000)), ("login_rate_per_email", json!(1000))]).await;
    let root = app.superuser("root@example.com").await;
    let alice = app.signed_in("alice@example.com").await;
    let id = app.gql_as(&alice.access, "{ me { id } }", json!({})).await["data"]["me"]["id"].clone();
    let attempts = (0..100).map(|_| app.login("alice@example.com", WRONG));
    let answers = futures::future::join_all(attempts).await;
    assert!(answers.iter().all(|a| error_code(a) == "INVALID_CREDENTIALS"), "{:?}", answers.first());
    let trail = app.gql_as(&root.access, AUDIT, json!({ "f": { "userId": id } })).await;
    let events = trail["data"]["auditEvents"]["edges"].as_array().cloned().unwrap_or_default();
    let count = |kind: &str| events.iter().filter(|e| e["node"]["kind"] == kind).count();
    assert_eq!(count("ACCOUNT_LOCKED"), 1, "exactly one lock: {trail}");
    assert_eq!(count("LOGIN_FAILED"), 5, "only five passwords were verified: {trail}");
    assert_eq!(error_code(&app.login("alice@example.com", PASSWORD).await), "ACCOUNT_LOCKED");
}

#[tokio::test]
async fn a_second_lock_within_a_day_lasts_twice_as_long() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    fail_five_times(&app, "alice@example.com").await;
    assert!((890..=900).contains(&retry_after(&app.login("alice@example.com", PASSWORD).await)));
    app.clock.advance(Duration::seconds(901));
    fail_five_times(&app, "alice@example.com").await;
    let second = app.login("alice@example.com", PASSWORD).await;
    assert_eq!(error_code(&second), "ACCOUNT_LOCKED");
    assert!((1790..=1800).contains(&retry_after(&second)), "{second}");
}

#[tokio::test]
async fn wrong_login_codes_count_toward_the_same_lock() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let (challenge, code) = app.login_challenge("alice@example.com").await;
    let wrong = wrong_code(&code);
    for _ in 0..5 {
        assert_eq!(error_code(&app.verify_otp(&challenge, wrong).await), "OTP_INVALID");
    }
    assert_eq!(error_code(&app.login("alice@example.com", PASSWORD).await), "ACCOUNT_LOCKED");
}

#[tokio::test]
async fn failures_on_both_sides_of_a_quarter_hour_boundary_still_lock() {
    use idgate::clock::Clock;
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    // A minute before the next quarter hour of the clock (a fixed window's edge).
    let to_edge = 900 - app.clock.now().timestamp().rem_euclid(900);
    app.clock.advance(Duration::seconds(to_edge + 900 - 60));
    for _ in 0..4 {
        assert_eq!(error_code(&app.login("alice@example.com", WRONG).await), "INVALID_CREDENTIALS");
    }
    app.clock.advance(Duration::seconds(120));
    assert_eq!(error_code(&app.login("alice@example.com", WRONG).await), "INVALID_CREDENTIALS");
    let right = app.login("alice@example.com", PASSWORD).await;
    assert_eq!(error_code(&right), "ACCOUNT_LOCKED", "five failures within two minutes lock: {right}");
}
