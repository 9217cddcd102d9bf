use chrono::Duration;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, error_code, tokens};

const NUMBER: &str = "+14155552671";
const REQUEST: &str = "mutation($p: String!, $c: String) { requestPhoneVerification(phone: $p, currentPassword: $c) }";
const VERIFY: &str = "mutation($c: String!) { verifyPhone(code: $c) { user { phone phoneVerified } } }";
const PHONE_LOGIN: &str = "mutation($p: String!) { requestPhoneLogin(phone: $p) { challengeId channel destination } }";

async fn verify_phone(app: &TestApp, access: &str, phone: &str) -> Value {
    let requested = app.gql_as(access, REQUEST, json!({ "p": phone, "c": PASSWORD })).await;
    assert_eq!(requested["data"]["requestPhoneVerification"], true, "{requested}");
    app.gql_as(access, VERIFY, json!({ "c": app.last_sms_code(phone) })).await
}

#[tokio::test]
async fn a_texted_code_verifies_the_phone_and_changing_it_needs_the_password() {
    let app = TestApp::spawn().await;
    let user = app.signed_in("alice@example.com").await;
    let without = app.gql_as(&user.access, REQUEST, json!({ "p": "+1 415 555 2671" })).await;
    assert_eq!(without["errors"][0]["extensions"]["field"], "currentPassword", "{without}");
    let verified = verify_phone(&app, &user.access, NUMBER).await;
    assert_eq!(
        verified["data"]["verifyPhone"]["user"],
        json!({ "phone": NUMBER, "phoneVerified": true }),
        "{verified}"
    );
    assert!(app.sms_to(NUMBER)[0].contains("expires in 10 minutes"));
}

#[tokio::test]
async fn a_number_verified_by_one_account_cannot_be_verified_by_another() {
    let app = TestApp::spawn().await;
    let alice = app.signed_in("alice@example.com").await;
    let bob = app.signed_in("bob@example.com").await;
    assert!(verify_phone(&app, &alice.access, NUMBER).await["errors"].is_null());
    app.clock.advance(Duration::seconds(61));
    let taken = verify_phone(&app, &bob.access, NUMBER).await;
    assert_eq!(error_code(&taken), "CONFLICT");
    assert_eq!(taken["errors"][0]["extensions"]["field"], "phone");
}

#[tokio::test]
async fn texts_to_one_number_wait_a_minute_and_stop_after_five_a_day() {
    let app = TestApp::spawn().await;
    let user = app.signed_in("alice@example.com").await;
    let request = || app.gql_as(&user.access, REQUEST, json!({ "p": NUMBER, "c": PASSWORD }));
    assert!(request().await["errors"].is_null());
    let early = request().await;
    assert_eq!(error_code(&early), "RATE_LIMITED", "{early}");
    for _ in 0..4 {
        app.clock.advance(Duration::seconds(61));
        assert!(request().await["errors"].is_null());
    }
    app.clock.advance(Duration::seconds(61));
    assert_eq!(error_code(&request().await), "RATE_LIMITED", "five a day");
    assert_eq!(app.sms_to(NUMBER).len(), 5);
}

#[tokio::test]
async fn countries_outside_the_allow_list_get_no_text() {
    let app = TestApp::spawn_with(&[("sms_allowed_countries", json!("GB"))]).await;
    let user = app.signed_in("alice@example.com").await;
    let refused = app.gql_as(&user.access, REQUEST, json!({ "p": NUMBER, "c": PASSWORD })).await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    assert_eq!(refused["errors"][0]["extensions"]["field"], "phone");
    assert!(app.sms_to(NUMBER).is_empty());
    let login = app.gql(PHONE_LOGIN, json!({ "p": NUMBER })).await;
    assert_eq!(error_code(&login), "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_verified_phone_logs_in_with_a_texted_code() {
    let app = TestApp::spawn().await;
    let user = app.signed_in("alice@example.com").await;
    verify_phone(&app, &user.access, NUMBER).await;
    app.clock.advance(Duration::seconds(61));
    let challenge = app.gql(PHONE_LOGIN, json!({ "p": "+1 (415) 555-2671" })).await;
    let challenge = &challenge["data"]["requestPhoneLogin"];
    assert_eq!(challenge["channel"], "SMS", "{challenge}");
    assert_eq!(challenge["destination"], "+1••••••••71");
    let id = challenge["challengeId"].as_str().unwrap_or_default();
    let verified = app.verify_otp(id, &app.last_sms_code(NUMBER)).await;
    let session = tokens(&verified["data"]["verifyOtp"]);
    assert_eq!(app.me(&session.access).await["data"]["me"]["email"], "alice@example.com");
}

#[tokio::test]
async fn an_unknown_number_gets_the_same_challenge_but_no_text_and_no_code_works() {
    let app = TestApp::spawn().await;
    let challenge = app.gql(PHONE_LOGIN, json!({ "p": NUMBER })).await;
    let id = challenge["data"]["requestPhoneLogin"]["challengeId"].as_str().unwrap_or_else(|| panic!("{challenge}"));
    assert_eq!(challenge["data"]["requestPhoneLogin"]["channel"], "SMS");
    assert!(app.sms_to(NUMBER).is_empty());
    let guess = app.verify_otp(id, "123456").await;
    assert_eq!(error_code(&guess), "OTP_INVALID");
}

#[tokio::test]
async fn with_phone_signup_an_unknown_number_becomes_an_account() {
    let app = TestApp::spawn_with(&[("phone_signup", json!(true))]).await;
    let challenge = app.gql(PHONE_LOGIN, json!({ "p": NUMBER })).await;
    let id = challenge["data"]["requestPhoneLogin"]["challengeId"].as_str().unwrap_or_else(|| panic!("{challenge}"));
    let verified = app.verify_otp(id, &app.last_sms_code(NUMBER)).await;
    let session = tokens(&verified["data"]["verifyOtp"]);
    let me = app.gql_as(&session.access, "{ me { email phone phoneVerified } }", json!({})).await;
    assert_eq!(me["data"]["me"], json!({ "email": null, "phone": NUMBER, "phoneVerified": true }), "{me}");
    // The next login by the same number finds that account instead of making another.
    app.clock.advance(Duration::seconds(61));
    let again = app.gql(PHONE_LOGIN, json!({ "p": NUMBER })).await;
    let id = again["data"]["requestPhoneLogin"]["challengeId"].as_str().unwrap_or_default();
    let second = tokens(&app.verify_otp(id, &app.last_sms_code(NUMBER)).await["data"]["verifyOtp"]);
    let me_again = app.gql_as(&second.access, "{ me { id } }", json!({})).await;
    let first_id = app.gql_as(&session.access, "{ me { id } }", json!({})).await;
    assert_eq!(me_again["data"]["me"]["id"], first_id["data"]["me"]["id"]);
}
