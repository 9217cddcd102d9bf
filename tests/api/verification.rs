use chrono::Duration;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, error_code, link_in};

const REQUEST_VERIFICATION: &str = "mutation($e: String!) { requestEmailVerification(email: $e) }";

async fn verify_token(app: &TestApp, token: &str) -> Value {
    app.gql(
        "mutation($input: VerifyEmailInput!) { verifyEmail(input: $input) { user { email emailVerified } } }",
        json!({ "input": { "token": token } }),
    )
    .await
}

#[tokio::test]
async fn registration_mails_a_link_and_a_code_and_login_waits_for_verification() {
    let app = TestApp::spawn().await;
    app.register("alice@example.com", PASSWORD).await;
    let mails = app.mails_to("alice@example.com");
    assert_eq!(mails.len(), 1);
    let (link, _) = link_in(&mails[0]).unwrap_or_else(|| panic!("no link in {}", mails[0]));
    assert!(link.starts_with(&format!("{}/verify-email?token=", app.address)), "{link}");

    assert_eq!(error_code(&app.login("alice@example.com", PASSWORD).await), "EMAIL_NOT_VERIFIED");
    // Without the password nothing is revealed: a wrong password is just wrong.
    assert_eq!(error_code(&app.login("alice@example.com", "wrong password again 1").await), "INVALID_CREDENTIALS");

    let verified = app.verify_email_code("alice@example.com", &app.last_code_for("alice@example.com")).await;
    assert_eq!(verified["data"]["verifyEmail"]["user"]["emailVerified"], true, "{verified}");
    assert_eq!(app.login("alice@example.com", PASSWORD).await["data"]["login"]["__typename"], "OtpChallenge");
}

#[tokio::test]
async fn login_without_required_verification_works_when_configured_off() {
    let app = TestApp::spawn_with(&[("require_email_verification", json!(false))]).await;
    app.register("alice@example.com", PASSWORD).await;
    assert_eq!(app.login("alice@example.com", PASSWORD).await["data"]["login"]["__typename"], "OtpChallenge");
}

#[tokio::test]
async fn the_link_page_confirms_only_when_its_button_is_pressed() {
    let app = TestApp::spawn().await;
    app.register("alice@example.com", PASSWORD).await;
    let (_, token) = link_in(&app.mails_to("alice@example.com")[0]).unwrap_or_default();
    let page_url = format!("{}/verify-email?token={token}", app.address);

    // A scanner following the link twice burns nothing.
    for _ in 0..2 {
        let page = app.client.get(&page_url).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["referrer-policy"], "no-referrer");
        assert!(page.text().await.unwrap_or_default().contains("Confirm your email"));
    }
    assert_eq!(error_code(&app.login("alice@example.com", PASSWORD).await), "EMAIL_NOT_VERIFIED");

    let confirm = app.press_verify_email(&token).await;
    assert_eq!(confirm.status(), 200);
    assert!(confirm.text().await.unwrap_or_default().contains("Email confirmed"));
    assert_eq!(app.login("alice@example.com", PASSWORD).await["data"]["login"]["__typename"], "OtpChallenge");

    let again =
        app.client.post(format!("{}/verify-email", app.address)).form(&[("token", token.as_str())]).send().await;
    assert_eq!(again.unwrap_or_else(|e| panic!("{e}")).status(), 400, "a link works once");
    let bogus = app.client.get(format!("{}/verify-email?token=<script>", app.address)).send().await;
    let bogus = bogus.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bogus.status(), 400);
    assert!(!bogus.text().await.unwrap_or_default().contains("<script>"));
}

#[tokio::test]
async fn a_verification_token_works_once_and_expires() {
    let app = TestApp::spawn().await;
    app.register("alice@example.com", PASSWORD).await;
    let (_, token) = link_in(&app.mails_to("alice@example.com")[0]).unwrap_or_default();
    let first = verify_token(&app, &token).await;
    assert_eq!(first["data"]["verifyEmail"]["user"]["emailVerified"], true, "{first}");
    let second = verify_token(&app, &token).await;
    assert_eq!(error_code(&second), "BAD_USER_INPUT");
    assert_eq!(second["errors"][0]["extensions"]["field"], "token");

    app.register("bob@example.com", PASSWORD).await;
    let (_, late) = link_in(&app.mails_to("bob@example.com")[0]).unwrap_or_default();
    app.clock.advance(Duration::hours(24) + Duration::seconds(1));
    assert_eq!(error_code(&verify_token(&app, &late).await), "BAD_USER_INPUT");
    let code = app.last_code_for("bob@example.com");
    assert_eq!(error_code(&app.verify_email_code("bob@example.com", &code).await), "OTP_EXPIRED");
}

#[tokio::test]
async fn a_verification_code_allows_five_wrong_tries() {
    let app = TestApp::spawn().await;
    app.register("alice@example.com", PASSWORD).await;
    let code = app.last_code_for("alice@example.com");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for remaining in (0..5).rev() {
        let response = app.verify_email_code("alice@example.com", wrong).await;
        assert_eq!(response["errors"][0]["extensions"]["attemptsRemaining"], remaining, "{response}");
    }
    assert_eq!(error_code(&app.verify_email_code("alice@example.com", &code).await), "OTP_INVALID");
    // An address without an account answers like a wrong code.
    assert_eq!(error_code(&app.verify_email_code("nobody@example.com", "123456").await), "OTP_INVALID");
}

#[tokio::test]
async fn a_password_reset_token_cannot_verify_an_email_nor_the_reverse() {
    let app = TestApp::spawn().await;
    app.register("alice@example.com", PASSWORD).await;
    let (_, verify) = link_in(&app.mails_to("alice@example.com")[0]).unwrap_or_default();
    app.gql("mutation { requestPasswordReset(email: \"alice@example.com\") }", json!({})).await;
    let mails = app.wait_for_mails("alice@example.com", 2).await;
    let (_, reset) = link_in(&mails[1]).unwrap_or_default();

    assert_eq!(error_code(&verify_token(&app, &reset).await), "BAD_USER_INPUT");
    let reset_with_verify = app
        .gql(
            "mutation($input: ResetPasswordInput!) { resetPassword(input: $input) }",
            json!({ "input": { "token": verify, "newPassword": "a brand new passphrase 77" } }),
        )
        .await;
    assert_eq!(error_code(&reset_with_verify), "BAD_USER_INPUT");
    // Both still work for their own purpose.
    assert!(verify_token(&app, &verify).await["errors"].is_null());
}

#[tokio::test]
async fn requesting_verification_answers_alike_for_every_address_and_has_a_cooldown() {
    let app = TestApp::spawn().await;
    app.register("unverified@example.com", PASSWORD).await;
    app.register_verified("verified@example.com", PASSWORD).await;
    for email in ["unverified@example.com", "verified@example.com", "nobody@example.com", "not an address"] {
        let response = app.gql(REQUEST_VERIFICATION, json!({ "e": email })).await;
        assert_eq!(response, json!({ "data": { "requestEmailVerification": true } }), "{email}");
    }
    assert_eq!(app.wait_for_mails("unverified@example.com", 2).await.len(), 2, "a new mail for the unverified one");
    assert_eq!(app.mails_to("verified@example.com").len(), 1, "nothing new for a verified address");
    assert!(app.mails_to("nobody@example.com").is_empty());

    let again = app.gql(REQUEST_VERIFICATION, json!({ "e": "nobody@example.com" })).await;
    assert_eq!(error_code(&again), "RATE_LIMITED", "the cooldown holds for unknown addresses too");
    app.clock.advance(Duration::seconds(61));
    assert!(app.gql(REQUEST_VERIFICATION, json!({ "e": "unverified@example.com" })).await["errors"].is_null());
}

#[tokio::test]
async fn changing_the_email_needs_the_password_keeps_the_old_one_until_verified_and_tells_it() {
    let app = TestApp::spawn().await;
    let user = app.signed_in("alice@example.com").await;
    let change = "mutation($input: RequestEmailChangeInput!) { requestEmailChange(input: $input) }";

    let without = app.gql_as(&user.access, change, json!({ "input": { "newEmail": "alice@new.example.com" } })).await;
    assert_eq!(error_code(&without), "BAD_USER_INPUT");
    assert_eq!(without["errors"][0]["extensions"]["field"], "currentPassword");
    let wrong = app
        .gql_as(
            &user.access,
            change,
            json!({ "input": { "newEmail": "alice@new.example.com", "currentPassword": "nope nope nope 1" } }),
        )
        .await;
    assert_eq!(error_code(&wrong), "INVALID_CREDENTIALS");

    let ok = app
        .gql_as(
            &user.access,
            change,
            json!({ "input": { "newEmail": "alice@new.example.com", "currentPassword": PASSWORD } }),
        )
        .await;
    assert_eq!(ok["data"]["requestEmailChange"], true, "{ok}");
    let notice = app.mails_to("alice@example.com").last().cloned().unwrap_or_default();
    assert!(notice.contains("change of your idgate email address"), "the old address is told: {notice}");
    assert!(notice.contains("new.example.com"), "with the new address, masked: {notice}");
    assert_eq!(app.me(&user.access).await["data"]["me"]["email"], "alice@example.com", "unchanged until verified");

    let code = app.last_code_for("alice@new.example.com");
    let verified = app.verify_email_code("alice@new.example.com", &code).await;
    assert_eq!(verified["data"]["verifyEmail"]["user"]["email"], "alice@new.example.com", "{verified}");
    assert_eq!(app.me(&user.access).await["data"]["me"]["email"], "alice@new.example.com");
    assert_eq!(error_code(&app.login("alice@example.com", PASSWORD).await), "INVALID_CREDENTIALS");
}
