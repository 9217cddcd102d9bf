//! What a user was promised survives a restart, on both setups: a logout, a mailed link, a
//! pending code, an attempt counter and a rate-limit window. Each test stops the app (as
//! SIGTERM would) and starts a new one on the same database, KV and clock.

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, error_code, link_in, re_signed, wrong_code};

#[tokio::test]
async fn a_logged_out_token_stays_refused_after_a_restart() {
    let app = TestApp::spawn().await;
    let user = app.signed_in("alice@example.com").await;
    let other_device = app.log_in("alice@example.com").await;
    let logout = app.gql_as(&user.access, "mutation { logout }", json!({})).await;
    assert_eq!(logout["data"]["logout"], true, "{logout}");
    assert_eq!(error_code(&app.me(&user.access).await), "UNAUTHENTICATED");

    let app = app.restart().await;
    assert_eq!(error_code(&app.me(&user.access).await), "UNAUTHENTICATED", "the logout was forgotten");
    let sessions = app.gql_as(&user.access, "{ mySessions { id } }", json!({})).await;
    assert_eq!(error_code(&sessions), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.refresh(&user.refresh).await), "UNAUTHENTICATED");
    // The session that was not logged out still works.
    assert_eq!(app.me(&other_device.access).await["data"]["me"]["email"], "alice@example.com");
}

#[tokio::test]
async fn sessions_ended_by_logout_all_stay_ended_after_a_restart() {
    let app = TestApp::spawn().await;
    let laptop = app.signed_in("alice@example.com").await;
    let phone = app.log_in("alice@example.com").await;
    let ended = app.gql_as(&laptop.access, "mutation { logoutAll }", json!({})).await;
    assert!(ended["errors"].is_null(), "{ended}");
    let app = app.restart().await;
    for token in [&laptop.access, &phone.access] {
        assert_eq!(error_code(&app.me(token).await), "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn a_validly_signed_token_for_a_session_that_does_not_exist_is_refused() {
    let app = TestApp::spawn().await;
    let user = app.signed_in("alice@example.com").await;
    // Control: re-signing an unchanged token keeps it valid, so the refusals below are about
    // the session, not the signature.
    let same = re_signed(&user.access, |_, _| {});
    assert_eq!(app.me(&same).await["data"]["me"]["email"], "alice@example.com");
    let unknown = re_signed(&user.access, |_, claims| claims["sid"] = json!(uuid::Uuid::new_v4().to_string()));
    assert_eq!(error_code(&app.me(&unknown).await), "UNAUTHENTICATED");
    let bob = app.signed_in("bob@example.com").await;
    let borrowed = re_signed(&user.access, |_, claims| claims["sid"] = json!(bob.session_id));
    assert_eq!(error_code(&app.me(&borrowed).await), "UNAUTHENTICATED", "a session belongs to one user");
}

#[tokio::test]
async fn a_verification_link_mailed_before_a_restart_works_after_it() {
    let app = TestApp::spawn().await;
    app.register("alice@example.com", PASSWORD).await;
    let (_, token) = link_in(&app.mails_to("alice@example.com")[0]).unwrap_or_else(|| panic!("no link"));
    let app = app.restart().await;
    let pressed = app.press_verify_email(&token).await;
    assert_eq!(pressed.status(), 200);
    assert!(pressed.text().await.unwrap_or_default().contains("Your email address is confirmed"));
    assert_eq!(app.login("alice@example.com", PASSWORD).await["data"]["login"]["__typename"], "OtpChallenge");
}

#[tokio::test]
async fn a_password_reset_link_mailed_before_a_restart_works_after_it() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let before = app.mails_to("alice@example.com").len();
    app.gql("mutation { requestPasswordReset(email: \"alice@example.com\") }", json!({})).await;
    let mails = app.wait_for_mails("alice@example.com", before + 1).await;
    let (_, token) = link_in(mails.last().unwrap_or_else(|| panic!("no reset mail"))).unwrap_or_default();
    let app = app.restart().await;
    let reset = app
        .gql(
            "mutation($input: ResetPasswordInput!) { resetPassword(input: $input) }",
            json!({ "input": { "token": token, "newPassword": "a brand new passphrase 77" } }),
        )
        .await;
    assert_eq!(reset["data"]["resetPassword"], true, "{reset}");
}

#[tokio::test]
async fn a_login_code_sent_before_a_restart_completes_the_login_after_it() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let (challenge, code) = app.login_challenge("alice@example.com").await;
    let app = app.restart().await;
    let verified = app.verify_otp(&challenge, &code).await;
    assert!(verified["data"]["verifyOtp"]["accessToken"].is_string(), "{verified}");
}

#[tokio::test]
async fn wrong_code_attempts_are_still_counted_after_a_restart() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let (challenge, code) = app.login_challenge("alice@example.com").await;
    let wrong = wrong_code(&code);
    for _ in 0..4 {
        assert_eq!(error_code(&app.verify_otp(&challenge, wrong).await), "OTP_INVALID");
    }
    let app = app.restart().await;
    let fifth = app.verify_otp(&challenge, wrong).await;
    assert_eq!(fifth["errors"][0]["extensions"]["attemptsRemaining"], 0, "a restart reset the counter: {fifth}");
    assert_eq!(error_code(&app.verify_otp(&challenge, &code).await), "OTP_INVALID", "the challenge is spent");
}

#[tokio::test]
async fn a_rate_limit_window_is_not_reset_by_a_restart() {
    let app = TestApp::spawn_with(&[("login_rate_per_email", json!(2))]).await;
    app.register_verified("alice@example.com", PASSWORD).await;
    for _ in 0..2 {
        assert_eq!(error_code(&app.login("alice@example.com", "not the password at all").await), "INVALID_CREDENTIALS");
    }
    let app = app.restart().await;
    assert_eq!(error_code(&app.login("alice@example.com", PASSWORD).await), "RATE_LIMITED");
}
