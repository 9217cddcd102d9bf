use chrono::Duration;
use futures::future::join_all;
use serde_json::json;

use crate::helpers::{LOGIN, PASSWORD, TestApp, error_code, tokens};

async fn challenge(app: &TestApp, email: &str) -> String {
    let login = app.login(email, PASSWORD).await;
    login["data"]["login"]["challengeId"].as_str().unwrap_or_else(|| panic!("{login}")).to_owned()
}

fn wrong(code: &str) -> String {
    let first = code.chars().next().and_then(|c| c.to_digit(10)).unwrap_or(0);
    format!("{}{}", (first + 1) % 10, &code[1..])
}

#[tokio::test]
async fn login_mails_a_code_and_answers_a_masked_challenge() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let login = app.login("alice@example.com", PASSWORD).await;
    let challenge = &login["data"]["login"];
    assert_eq!(challenge["__typename"], "OtpChallenge", "{login}");
    assert_eq!(challenge["channel"], "EMAIL");
    assert_eq!(challenge["destination"], "a•••e@example.com");
    assert!(challenge["accessToken"].is_null());
    let mails = app.mails_to("alice@example.com");
    assert_eq!(mails.len(), 2, "the verification mail, then the code");
    assert!(mails[1].contains("Subject: Your idgate sign-in code"), "{}", mails[1]);
    let code = app.last_code_for("alice@example.com");
    assert!(!login.to_string().contains(&code), "the code must never appear in a response");
}

#[tokio::test]
async fn the_mailed_code_completes_the_login_and_me_answers() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let id = challenge(&app, "alice@example.com").await;
    let verified = app.verify_otp(&id, &app.last_code_for("alice@example.com")).await;
    let payload = &verified["data"]["verifyOtp"];
    assert_eq!(payload["tokenType"], "Bearer", "{verified}");
    assert_eq!(payload["expiresIn"], 900);
    assert_eq!(payload["session"]["deviceName"], "test laptop");
    assert_eq!(payload["session"]["current"], true);
    assert!(payload["user"]["lastLoginAt"].is_string());
    let me = app.me(&tokens(payload).access).await;
    assert_eq!(me["data"]["me"]["email"], "alice@example.com", "{me}");
}

#[tokio::test]
async fn login_fails_with_the_same_error_for_unknown_users_and_wrong_passwords() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let wrong_password = app.login("alice@example.com", "not the password at all 1").await;
    let unknown_user = app.login("nobody@example.com", "not the password at all 1").await;
    let malformed_email = app.login("nobody", "not the password at all 1").await;
    assert_eq!(error_code(&wrong_password), "INVALID_CREDENTIALS");
    assert_eq!(wrong_password["errors"], unknown_user["errors"]);
    assert_eq!(wrong_password["errors"], malformed_email["errors"]);
    assert_eq!(wrong_password["data"], unknown_user["data"]);
    assert_eq!(app.mails_to("alice@example.com").len(), 1, "no code is sent for a wrong password");
}

#[tokio::test]
async fn login_without_the_code_step_returns_tokens_directly() {
    let app = TestApp::spawn_with(&[("login_otp", json!("off"))]).await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let login = app.login("alice@example.com", PASSWORD).await;
    assert_eq!(login["data"]["login"]["__typename"], "AuthPayload", "{login}");
    let me = app.me(&tokens(&login["data"]["login"]).access).await;
    assert_eq!(me["data"]["me"]["email"], "alice@example.com");
    let config = app.gql("{ authConfig { loginRequiresOtp } }", json!({})).await;
    assert_eq!(config["data"]["authConfig"]["loginRequiresOtp"], false);
}

#[tokio::test]
async fn five_wrong_codes_kill_the_challenge_even_for_the_right_code() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let id = challenge(&app, "alice@example.com").await;
    let code = app.last_code_for("alice@example.com");
    for remaining in (0..5).rev() {
        let response = app.verify_otp(&id, &wrong(&code)).await;
        assert_eq!(error_code(&response), "OTP_INVALID");
        assert_eq!(response["errors"][0]["extensions"]["attemptsRemaining"], remaining, "{response}");
    }
    let response = app.verify_otp(&id, &code).await;
    assert_eq!(error_code(&response), "OTP_INVALID");
    assert_eq!(response["errors"][0]["extensions"]["attemptsRemaining"], 0);
    // A dead challenge cannot be revived by asking for a new code.
    app.clock.advance(Duration::seconds(61));
    let resend =
        app.gql("mutation($id: ID!) { resendOtp(challengeId: $id) { challengeId } }", json!({ "id": id })).await;
    assert_eq!(error_code(&resend), "OTP_INVALID", "{resend}");
}

#[tokio::test]
async fn fifty_concurrent_wrong_guesses_get_at_most_five_attempts() {
    let app = TestApp::spawn_with(&[("otp_rate_per_ip", json!(1000))]).await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let id = challenge(&app, "alice@example.com").await;
    let code = app.last_code_for("alice@example.com");
    let bad = wrong(&code);
    let guesses = (0..50).map(|_| app.verify_otp(&id, &bad));
    let answers = join_all(guesses).await;
    assert!(answers.iter().all(|r| error_code(r) == "OTP_INVALID"));
    // Attempts 1 to 4 leave 4, 3, 2 and 1 tries; the fifth leaves none and every later guess
    // finds the challenge dead. More than five judged guesses would repeat a number.
    let mut left: Vec<u64> = answers
        .iter()
        .filter_map(|r| r["errors"][0]["extensions"]["attemptsRemaining"].as_u64())
        .filter(|&n| n > 0)
        .collect();
    left.sort_unstable();
    assert_eq!(left, vec![1, 2, 3, 4]);
    // The right code no longer works: the budget was spent.
    assert_eq!(error_code(&app.verify_otp(&id, &code).await), "OTP_INVALID");
}

#[tokio::test]
async fn an_expired_code_is_refused_as_expired() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let id = challenge(&app, "alice@example.com").await;
    app.clock.advance(Duration::minutes(10) + Duration::seconds(1));
    let response = app.verify_otp(&id, &app.last_code_for("alice@example.com")).await;
    assert_eq!(error_code(&response), "OTP_EXPIRED", "{response}");
}

#[tokio::test]
async fn a_code_works_only_once() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let id = challenge(&app, "alice@example.com").await;
    let code = app.last_code_for("alice@example.com");
    assert!(app.verify_otp(&id, &code).await["errors"].is_null());
    assert_eq!(error_code(&app.verify_otp(&id, &code).await), "OTP_INVALID");
}

#[tokio::test]
async fn resend_waits_for_the_cooldown_and_the_old_code_dies() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let id = challenge(&app, "alice@example.com").await;
    let old_code = app.last_code_for("alice@example.com");
    let resend = "mutation($id: ID!) { resendOtp(challengeId: $id) { challengeId resendAvailableAt } }";

    let early = app.gql(resend, json!({ "id": id })).await;
    assert_eq!(error_code(&early), "RATE_LIMITED", "{early}");
    let retry_after = early["errors"][0]["extensions"]["retryAfter"].as_u64().unwrap_or(0);
    assert!((1..=60).contains(&retry_after), "{retry_after}");

    app.clock.advance(Duration::seconds(61));
    let resent = app.gql(resend, json!({ "id": id })).await;
    assert_eq!(resent["data"]["resendOtp"]["challengeId"], id.as_str(), "{resent}");
    assert_eq!(app.mails_to("alice@example.com").len(), 3, "verification, first code, second code");
    let new_code = app.last_code_for("alice@example.com");

    if new_code != old_code {
        assert_eq!(error_code(&app.verify_otp(&id, &old_code).await), "OTP_INVALID");
    }
    let verified = app.verify_otp(&id, &new_code).await;
    assert!(verified["errors"].is_null(), "{verified}");
}

#[tokio::test]
async fn a_malformed_code_or_challenge_is_refused_without_spending_attempts() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let id = challenge(&app, "alice@example.com").await;
    for code in ["12345", "abcdef", "1234567"] {
        let response = app.verify_otp(&id, code).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT");
        assert_eq!(response["errors"][0]["extensions"]["field"], "code");
    }
    assert_eq!(error_code(&app.verify_otp("no-such-challenge", "123456").await), "OTP_INVALID");
    let verified = app.verify_otp(&id, &app.last_code_for("alice@example.com")).await;
    assert!(verified["errors"].is_null(), "{verified}");
}

#[tokio::test]
async fn aliasing_many_logins_in_one_document_is_refused_before_any_runs() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let fields: String = (0..3)
        .map(|i| {
            format!(
                "l{i}: login(input: {{ email: \"alice@example.com\", password: \"{PASSWORD}\" }}) {{ __typename }} "
            )
        })
        .collect();
    let response = app.gql(&format!("mutation {{ {fields} }}"), json!({})).await;
    assert_eq!(error_code(&response), "GRAPHQL_VALIDATION_FAILED", "{response}");
    assert!(response["data"].is_null());
    assert_eq!(app.mails_to("alice@example.com").len(), 1, "no login ran: only the verification mail is there");
}

#[tokio::test]
async fn logins_are_rate_limited_per_ip_and_count_every_alias() {
    let app = TestApp::spawn_with(&[("login_rate_per_ip", json!(3))]).await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let two = format!(
        "mutation {{ a: login(input: {{ email: \"alice@example.com\", password: \"x-{PASSWORD}\" }}) {{ __typename }} \
         b: login(input: {{ email: \"alice@example.com\", password: \"x-{PASSWORD}\" }}) {{ __typename }} }}"
    );
    let response = app.gql(&two, json!({})).await;
    assert_eq!(response["errors"].as_array().map(Vec::len), Some(2), "{response}");
    app.login("alice@example.com", "wrong password again 1").await;
    let limited = app.gql(LOGIN, json!({ "input": { "email": "alice@example.com", "password": PASSWORD } })).await;
    assert_eq!(error_code(&limited), "RATE_LIMITED", "{limited}");
}
