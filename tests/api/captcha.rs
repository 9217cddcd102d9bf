//! CAPTCHA on the operations bots target, checked against a siteverify server on 127.0.0.1 in
//! each mode and for each provider's answer shape.

use serde_json::{Value, json};

use crate::{
    helpers::{PASSWORD, TestApp, error_code},
    support::siteverify::{SECRET, Siteverify},
};

const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) { __typename } }";
const REGISTER: &str =
    "mutation($input: RegisterInput!, $t: String) { register(input: $input, captchaToken: $t) { user { id } } }";
const RESET: &str = "mutation($e: String!, $t: String) { requestPasswordReset(email: $e, captchaToken: $t) }";
const PHONE: &str = "mutation($p: String!, $t: String) { requestPhoneLogin(phone: $p, captchaToken: $t) { channel } }";

async fn with_captcha(verify: &Siteverify, mode: &str, provider: &str) -> TestApp {
    TestApp::spawn_with(&[
        ("captcha_mode", json!(mode)),
        ("captcha_provider", json!(provider)),
        ("captcha_secret", json!(SECRET)),
        ("captcha_site_key", json!("site-key-123")),
        ("captcha_verify_url", json!(verify.url)),
    ])
    .await
}

async fn login(app: &TestApp, password: &str, token: Option<&str>) -> Value {
    let input = json!({ "email": "alice@example.com", "password": password, "captchaToken": token });
    app.gql(LOGIN, json!({ "input": input })).await
}

#[tokio::test]
async fn in_always_mode_every_guarded_operation_needs_a_valid_token() {
    let verify = Siteverify::start().await;
    let app = with_captcha(&verify, "always", "hcaptcha").await;
    let config = app.gql("{ authConfig { captcha { provider siteKey mode } } }", json!({})).await;
    assert_eq!(
        config["data"]["authConfig"]["captcha"],
        json!({ "provider": "HCAPTCHA", "siteKey": "site-key-123", "mode": "ALWAYS" })
    );

    let input = json!({ "email": "alice@example.com", "password": PASSWORD });
    assert_eq!(error_code(&app.gql(REGISTER, json!({ "input": input })).await), "CAPTCHA_REQUIRED");
    assert_eq!(error_code(&app.gql(REGISTER, json!({ "input": input, "t": "bot" })).await), "CAPTCHA_INVALID");
    let registered = app.gql(REGISTER, json!({ "input": input, "t": "human" })).await;
    assert!(registered["errors"].is_null(), "{registered}");

    assert_eq!(error_code(&login(&app, PASSWORD, None).await), "CAPTCHA_REQUIRED");
    assert_eq!(error_code(&login(&app, PASSWORD, Some("bot")).await), "CAPTCHA_INVALID");
    assert_eq!(error_code(&login(&app, PASSWORD, Some("human")).await), "EMAIL_NOT_VERIFIED", "past the captcha");

    let reset = |t: Option<&'static str>| app.gql(RESET, json!({ "e": "alice@example.com", "t": t }));
    assert_eq!(error_code(&reset(None).await), "CAPTCHA_REQUIRED");
    assert_eq!(reset(Some("human")).await["data"]["requestPasswordReset"], true);
    let phone = |t: Option<&'static str>| app.gql(PHONE, json!({ "p": "+14155552671", "t": t }));
    assert_eq!(error_code(&phone(None).await), "CAPTCHA_REQUIRED");
    assert_eq!(phone(Some("human")).await["data"]["requestPhoneLogin"]["channel"], "SMS");

    let calls = verify.calls();
    assert!(calls.iter().all(|c| c.get("secret").map(String::as_str) == Some(SECRET)));
    assert!(calls.iter().all(|c| c.get("remoteip").map(String::as_str) == Some("127.0.0.1")), "{calls:?}");
}

#[tokio::test]
async fn a_recaptcha_v3_score_below_the_minimum_is_refused() {
    let verify = Siteverify::start().await;
    let app = with_captcha(&verify, "always", "recaptcha").await;
    app.register_verified_with_captcha().await;
    assert_eq!(error_code(&login(&app, PASSWORD, Some("score-0.3")).await), "CAPTCHA_INVALID");
    assert_eq!(login(&app, PASSWORD, Some("score-0.9")).await["data"]["login"]["__typename"], "OtpChallenge");
}

#[tokio::test]
async fn in_after_failures_mode_logins_need_a_token_once_an_address_failed_three_times() {
    let verify = Siteverify::start().await;
    let app = with_captcha(&verify, "after_failures", "turnstile").await;
    app.register_verified_with_captcha().await;
    assert_eq!(login(&app, PASSWORD, None).await["data"]["login"]["__typename"], "OtpChallenge", "no captcha yet");
    for _ in 0..3 {
        assert_eq!(error_code(&login(&app, "not the password 9", None).await), "INVALID_CREDENTIALS");
    }
    assert_eq!(error_code(&login(&app, PASSWORD, None).await), "CAPTCHA_REQUIRED");
    assert_eq!(login(&app, PASSWORD, Some("human")).await["data"]["login"]["__typename"], "OtpChallenge");
    assert_eq!(verify.calls().len(), 1, "only the login after the failures was checked");
}

#[tokio::test]
async fn an_unreachable_provider_fails_closed() {
    let verify = Siteverify::start().await;
    let url = verify.url.clone();
    drop(verify);
    let app = TestApp::spawn_with(&[
        ("captcha_mode", json!("always")),
        ("captcha_secret", json!(SECRET)),
        ("captcha_verify_url", json!(url)),
    ])
    .await;
    let input = json!({ "email": "alice@example.com", "password": PASSWORD });
    let answer = app.gql(REGISTER, json!({ "input": input, "t": "human" })).await;
    assert_eq!(error_code(&answer), "CAPTCHA_UNAVAILABLE", "{answer}");
    assert!(app.mails_to("alice@example.com").is_empty(), "nothing ran");
}

impl TestApp {
    /// Registers alice with a passing token and verifies her address.
    async fn register_verified_with_captcha(&self) {
        let input = json!({ "email": "alice@example.com", "password": PASSWORD });
        let registered = self.gql(REGISTER, json!({ "input": input, "t": "human" })).await;
        assert!(registered["errors"].is_null(), "{registered}");
        let verified = self.verify_email_code("alice@example.com", &self.last_code_for("alice@example.com")).await;
        assert!(verified["errors"].is_null(), "{verified}");
    }
}
