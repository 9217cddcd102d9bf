use chrono::Duration;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, code_in, error_code, link_in};

const NEW_PASSWORD: &str = "a brand new passphrase 77";
const RESET: &str = "mutation($input: ResetPasswordInput!) { resetPassword(input: $input) }";
const VERIFY_CODE: &str =
    "mutation($e: String!, $c: String!) { verifyPasswordResetCode(email: $e, code: $c) { resetToken expiresAt } }";

async fn request_reset(app: &TestApp, email: &str) -> Value {
    app.gql("mutation($e: String!) { requestPasswordReset(email: $e) }", json!({ "e": email })).await
}

async fn reset(app: &TestApp, token: &str, password: &str) -> Value {
    app.gql(RESET, json!({ "input": { "token": token, "newPassword": password } })).await
}

/// The reset mail, once it has arrived (it is sent in the background).
async fn reset_mail(app: &TestApp, email: &str, count: usize) -> String {
    let mails = app.wait_for_mails(email, count).await;
    mails.into_iter().rev().find(|m| m.contains("reset")).unwrap_or_else(|| panic!("no reset mail to {email}"))
}

#[tokio::test]
async fn a_reset_link_sets_the_password_ends_every_session_and_tells_the_owner() {
    let app = TestApp::spawn().await;
    let laptop = app.signed_in("alice@example.com").await;
    let phone = app.log_in("alice@example.com").await;
    let mail_count = app.mails_to("alice@example.com").len();
    assert_eq!(request_reset(&app, "alice@example.com").await["data"]["requestPasswordReset"], true);
    let (link, token) = link_in(&reset_mail(&app, "alice@example.com", mail_count + 1).await).unwrap_or_default();
    assert!(link.contains("/reset-password?token="), "{link}");

    let done = reset(&app, &token, NEW_PASSWORD).await;
    assert_eq!(done["data"]["resetPassword"], true, "{done}");
    for session in [&laptop, &phone] {
        assert_eq!(error_code(&app.me(&session.access).await), "UNAUTHENTICATED");
        assert_eq!(error_code(&app.refresh(&session.refresh).await), "UNAUTHENTICATED");
    }
    assert_eq!(error_code(&app.login("alice@example.com", PASSWORD).await), "INVALID_CREDENTIALS");
    assert_eq!(app.login("alice@example.com", NEW_PASSWORD).await["data"]["login"]["__typename"], "OtpChallenge");
    let mails = app.wait_for_mails("alice@example.com", mail_count + 3).await;
    assert!(
        mails
            .iter()
            .any(|m| m.to_lowercase().contains("password was changed") || m.contains("password has been changed")),
        "no notice"
    );
    assert_eq!(error_code(&reset(&app, &token, "yet another passphrase 88").await), "BAD_USER_INPUT", "single use");
}

#[tokio::test]
async fn the_three_step_code_flow_resets_the_password() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    request_reset(&app, "alice@example.com").await;
    let code = code_in(&reset_mail(&app, "alice@example.com", 2).await).unwrap_or_default();
    let step2 = app.gql(VERIFY_CODE, json!({ "e": "alice@example.com", "c": code })).await;
    let token =
        step2["data"]["verifyPasswordResetCode"]["resetToken"].as_str().unwrap_or_else(|| panic!("{step2}")).to_owned();
    assert_eq!(
        error_code(&app.gql(VERIFY_CODE, json!({ "e": "alice@example.com", "c": code })).await),
        "OTP_INVALID",
        "the code works once"
    );
    assert_eq!(reset(&app, &token, NEW_PASSWORD).await["data"]["resetPassword"], true);
    assert_eq!(app.login("alice@example.com", NEW_PASSWORD).await["data"]["login"]["__typename"], "OtpChallenge");
}

#[tokio::test]
async fn reset_requests_answer_alike_for_unknown_addresses() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let known = request_reset(&app, "alice@example.com").await;
    let unknown = request_reset(&app, "nobody@example.com").await;
    let malformed = request_reset(&app, "nobody").await;
    assert_eq!(known, unknown);
    assert_eq!(known, malformed);
    assert!(app.mails_to("nobody@example.com").is_empty());
    let wrong = app.gql(VERIFY_CODE, json!({ "e": "nobody@example.com", "c": "123456" })).await;
    assert_eq!(error_code(&wrong), "OTP_INVALID");
}

#[tokio::test]
async fn a_reset_token_expires_after_thirty_minutes() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    request_reset(&app, "alice@example.com").await;
    let (_, token) = link_in(&reset_mail(&app, "alice@example.com", 2).await).unwrap_or_default();
    app.clock.advance(Duration::minutes(30) + Duration::seconds(1));
    assert_eq!(error_code(&reset(&app, &token, NEW_PASSWORD).await), "BAD_USER_INPUT");
    assert_eq!(app.login("alice@example.com", PASSWORD).await["data"]["login"]["__typename"], "OtpChallenge");
}

#[tokio::test]
async fn a_weak_new_password_is_refused_without_spending_the_token() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    request_reset(&app, "alice@example.com").await;
    let (_, token) = link_in(&reset_mail(&app, "alice@example.com", 2).await).unwrap_or_default();
    for weak in ["short", "password1234", "alice-example-zebra-9"] {
        let refused = reset(&app, &token, weak).await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{weak}");
        assert_eq!(refused["errors"][0]["extensions"]["field"], "newPassword");
    }
    assert_eq!(reset(&app, &token, NEW_PASSWORD).await["data"]["resetPassword"], true);
}

#[tokio::test]
async fn the_reset_page_sets_a_password_from_the_link() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    request_reset(&app, "alice@example.com").await;
    let (_, token) = link_in(&reset_mail(&app, "alice@example.com", 2).await).unwrap_or_default();
    let page = app.client.get(format!("{}/reset-password?token={token}", app.address)).send().await;
    let page = page.unwrap_or_else(|e| panic!("{e}")).text().await.unwrap_or_default();
    assert!(page.contains("new_password"), "{page}");
    assert!(page.contains("minlength=\"12\"") && page.contains("maxlength=\"128\""), "the policy's bounds: {page}");
    let submit = |password: &'static str| {
        app.client
            .post(format!("{}/reset-password", app.address))
            .form(&[("token", token.as_str()), ("new_password", password)])
            .send()
    };
    let weak = submit("password1234").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(weak.status(), 400);
    let done = submit(NEW_PASSWORD).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(done.status(), 200);
    assert_eq!(app.login("alice@example.com", NEW_PASSWORD).await["data"]["login"]["__typename"], "OtpChallenge");
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_the_other_sessions() {
    let app = TestApp::spawn().await;
    let laptop = app.signed_in("alice@example.com").await;
    let phone = app.log_in("alice@example.com").await;
    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
    let wrong = app.gql_as(&laptop.access, change, json!({ "c": "not my password 11", "n": NEW_PASSWORD })).await;
    assert_eq!(error_code(&wrong), "INVALID_CREDENTIALS");
    let weak = app.gql_as(&laptop.access, change, json!({ "c": PASSWORD, "n": "password1234" })).await;
    assert_eq!(error_code(&weak), "BAD_USER_INPUT");
    let done = app.gql_as(&laptop.access, change, json!({ "c": PASSWORD, "n": NEW_PASSWORD })).await;
    assert_eq!(done["data"]["changePassword"], true, "{done}");
    assert!(app.me(&laptop.access).await["errors"].is_null(), "the session that changed it continues");
    assert_eq!(error_code(&app.me(&phone.access).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.gql(change, json!({ "c": PASSWORD, "n": NEW_PASSWORD })).await), "UNAUTHENTICATED");
}
