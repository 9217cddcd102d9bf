use serde_json::json;

use crate::{
    helpers::{PASSWORD, TestApp, code_in, error_code},
    support::{sms_gateway::SmsGateway, smtp_receiver::SmtpReceiver},
};

#[tokio::test]
async fn mail_goes_out_over_smtp_with_text_and_html_parts() {
    let smtp = SmtpReceiver::start().await;
    let app = TestApp::spawn_with(&[("smtp_url", json!(format!("smtp://127.0.0.1:{}", smtp.port)))]).await;
    let registered = app.register("alice@example.com", PASSWORD).await;
    assert!(registered["errors"].is_null(), "{registered}");
    let messages = smtp.wait_for(1, std::time::Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 1);
    let mail = &messages[0];
    assert!(mail.contains("To: alice@example.com"), "{mail}");
    // The envelope names the same sender and the recipient alone.
    let envelope = smtp.envelopes().into_iter().next().unwrap_or_default();
    assert_eq!(envelope, ["MAIL FROM:<no-reply@localhost>", "RCPT TO:<alice@example.com>"], "{envelope:?}");
    assert!(mail.contains("multipart/alternative"), "{mail}");
    assert!(mail.contains("text/plain") && mail.contains("text/html"), "{mail}");
    let code = code_in(mail).unwrap_or_else(|| panic!("no code: {mail}"));
    let verified = app.verify_email_code("alice@example.com", &code).await;
    assert!(verified["errors"].is_null(), "the code delivered over SMTP works: {verified}");
    assert!(app.mails_to("alice@example.com").is_empty(), "nothing went to the outbox");
}

#[tokio::test]
async fn a_mail_that_cannot_be_sent_is_a_clear_error_where_the_user_waits() {
    // Nothing listens on this port: the SMTP connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").map(|l| l.local_addr().map(|a| a.port()));
    let port = closed.ok().and_then(Result::ok).unwrap_or(1);
    let app = TestApp::spawn_with(&[
        ("smtp_url", json!(format!("smtp://127.0.0.1:{port}"))),
        ("smtp_timeout_secs", json!(2)),
    ])
    .await;
    let response = app.register("alice@example.com", PASSWORD).await;
    assert_eq!(error_code(&response), "DELIVERY_FAILED", "{response}");
}

#[tokio::test]
async fn mail_speaks_the_language_the_browser_asks_for() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("Accept-Language", "es-MX,es;q=0.9,en;q=0.5")
        .json(&json!({
            "query": "mutation($input: RegisterInput!) { register(input: $input) { user { locale } } }",
            "variables": { "input": { "email": "ana@example.com", "password": PASSWORD } }
        }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    assert_eq!(body["data"]["register"]["user"]["locale"], "es-MX", "{body}");
    let mail = app.mails_to("ana@example.com").pop().unwrap_or_default();
    assert!(mail.contains("Subject: =?utf-8?") || mail.to_lowercase().contains("verifica"), "Spanish subject: {mail}");
}

#[tokio::test]
async fn texts_go_out_through_the_sms_gateway() {
    let gateway = SmsGateway::start(false).await;
    let app = TestApp::spawn_with(&[
        ("sms_gateway_url", json!(gateway.url)),
        ("sms_account_sid", json!("AC123")),
        ("sms_auth_token", json!("secret-token")),
        ("sms_from", json!("+15005550006")),
        ("phone_signup", json!(true)),
    ])
    .await;
    let challenge = app.gql("mutation { requestPhoneLogin(phone: \"+14155552671\") { challengeId } }", json!({})).await;
    assert!(challenge["errors"].is_null(), "{challenge}");
    let sent = gateway.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "+14155552671");
    assert_eq!(sent[0].from, "+15005550006");
    // HTTP basic auth with the account SID and token.
    assert_eq!(sent[0].authorization, "Basic QUMxMjM6c2VjcmV0LXRva2Vu");
    let code = code_in(&sent[0].body).unwrap_or_else(|| panic!("no code in {}", sent[0].body));
    let id = challenge["data"]["requestPhoneLogin"]["challengeId"].as_str().unwrap_or_default();
    assert!(app.verify_otp(id, &code).await["errors"].is_null());
}

#[tokio::test]
async fn a_failing_sms_gateway_is_a_clear_error() {
    let gateway = SmsGateway::start(true).await;
    let app = TestApp::spawn_with(&[
        ("sms_gateway_url", json!(gateway.url)),
        ("sms_account_sid", json!("AC123")),
        ("sms_auth_token", json!("secret-token")),
        ("phone_signup", json!(true)),
    ])
    .await;
    let response = app.gql("mutation { requestPhoneLogin(phone: \"+14155552671\") { challengeId } }", json!({})).await;
    assert_eq!(error_code(&response), "DELIVERY_FAILED", "{response}");
}
