//! Rate limits as a client meets them: sliding (no double burst at a window edge), 429 with
//! `Retry-After`, and counted per client address, which comes from forwarding headers only
//! when the connection is from a trusted proxy.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{LOGIN, PASSWORD, TestApp, VERIFY_OTP, code_in, error_code};

const WRONG: &str = "not the password at all 7";

/// Alice's login with `password`, sent with `headers`: the status, `Retry-After` and the body.
async fn login_with(app: &TestApp, headers: &[(&str, &str)], password: &str) -> (StatusCode, Option<String>, Value) {
    let mut request = app.client.post(format!("{}/graphql", app.address)).json(
        &json!({ "query": LOGIN, "variables": { "input": { "email": "alice@example.com", "password": password } } }),
    );
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = response.status();
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, retry_after, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_rate_limited_request_is_429_with_retry_after_in_both_media_types() {
    let app = TestApp::spawn_with(&[("login_rate_per_ip", json!(2))]).await;
    app.register_verified("alice@example.com", PASSWORD).await;
    for _ in 0..2 {
        let (status, _, body) = login_with(&app, &[("accept", "application/json")], WRONG).await;
        assert_eq!((status, error_code(&body)), (StatusCode::OK, "INVALID_CREDENTIALS".to_owned()), "{body}");
    }
    for accept in ["application/json", "application/graphql-response+json"] {
        let (status, retry_after, body) = login_with(&app, &[("accept", accept)], PASSWORD).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{accept}: {body}");
        assert_eq!(error_code(&body), "RATE_LIMITED");
        let seconds = body["errors"][0]["extensions"]["retryAfter"].as_u64().unwrap_or(0);
        assert!((1..=30).contains(&seconds), "a slot frees every 30 s: {seconds}");
        assert_eq!(retry_after, Some(seconds.to_string()), "{accept}");
    }
}

#[tokio::test]
async fn a_limit_has_no_double_burst_at_a_window_edge() {
    let app = TestApp::spawn_with(&[("login_rate_per_ip", json!(4))]).await;
    app.register_verified("alice@example.com", PASSWORD).await;
    // Four attempts late in one minute...
    app.clock.advance(Duration::seconds(58));
    for _ in 0..4 {
        assert_eq!(error_code(&app.login("alice@example.com", WRONG).await), "INVALID_CREDENTIALS");
    }
    // ...and early in the next one a fixed window would allow four more: a sliding one, none.
    app.clock.advance(Duration::seconds(4));
    assert_eq!(error_code(&app.login("alice@example.com", WRONG).await), "RATE_LIMITED");
    // One slot comes back every 15 s.
    app.clock.advance(Duration::seconds(15));
    assert_eq!(error_code(&app.login("alice@example.com", WRONG).await), "INVALID_CREDENTIALS");
    assert_eq!(error_code(&app.login("alice@example.com", WRONG).await), "RATE_LIMITED");
}

/// Logs alice in with `headers` on both steps and returns the IP her new session records.
async fn session_ip(app: &TestApp, headers: &[(&str, &str)]) -> String {
    let post = |query: &'static str, variables: Value| {
        let mut request = app
            .client
            .post(format!("{}/graphql", app.address))
            .json(&json!({ "query": query, "variables": variables }));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let login: Value = post(LOGIN, json!({ "input": { "email": "alice@example.com", "password": PASSWORD } }))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    let challenge = login["data"]["login"]["challengeId"].as_str().unwrap_or_else(|| panic!("{login}")).to_owned();
    let mails = app.mails_to("alice@example.com");
    let code = code_in(mails.last().unwrap_or_else(|| panic!("no mail"))).unwrap_or_default();
    let verified: Value = post(VERIFY_OTP, json!({ "input": { "challengeId": challenge, "code": code } }))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    let token = verified["data"]["verifyOtp"]["accessToken"].as_str().unwrap_or_else(|| panic!("{verified}"));
    let sessions = app.gql_as(token, "{ mySessions { ip current } }", json!({})).await;
    let current =
        sessions["data"]["mySessions"].as_array().and_then(|s| s.iter().find(|s| s["current"] == true).cloned());
    current.and_then(|s| s["ip"].as_str().map(str::to_owned)).unwrap_or_else(|| panic!("{sessions}"))
}

#[tokio::test]
async fn forwarding_headers_are_ignored_unless_the_peer_is_a_trusted_proxy() {
    let app = TestApp::spawn().await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let forged = [("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=198.51.100.4")];
    assert_eq!(session_ip(&app, &forged).await, "127.0.0.1", "a client cannot choose its own address");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_rightmost_untrusted_address_is_the_client() {
    let app = TestApp::spawn_with(&[("trusted_proxies", json!("127.0.0.0/8, 10.0.0.0/8"))]).await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let chain = [("x-forwarded-for", "192.0.2.1, 203.0.113.9, 10.1.2.3")];
    assert_eq!(session_ip(&app, &chain).await, "203.0.113.9", "the address the client wrote itself is ignored");
    let forwarded = [("forwarded", "for=\"[2001:db8::7]:4711\"")];
    assert_eq!(session_ip(&app, &forwarded).await, "2001:db8::7");
}

#[tokio::test]
async fn per_ip_limits_behind_a_trusted_proxy_count_each_client_apart() {
    let app = TestApp::spawn_with(&[("trusted_proxies", json!("127.0.0.1")), ("login_rate_per_ip", json!(1))]).await;
    app.register_verified("alice@example.com", PASSWORD).await;
    assert_eq!(wrong_login_from(&app, "203.0.113.1").await.0, StatusCode::OK);
    let again = wrong_login_from(&app, "203.0.113.1").await.0;
    assert_eq!(again, StatusCode::TOO_MANY_REQUESTS, "the same client is limited");
    let other = wrong_login_from(&app, "203.0.113.2").await.0;
    assert_eq!(other, StatusCode::OK, "another client behind the same proxy is not");
}

/// A wrong password for alice from `client` behind the proxy at 127.0.0.1: the status and the
/// error code.
async fn wrong_login_from(app: &TestApp, client: &str) -> (StatusCode, String) {
    let (status, _, body) = login_with(app, &[("x-forwarded-for", client)], WRONG).await;
    (status, error_code(&body))
}

#[tokio::test]
async fn a_limit_above_one_per_millisecond_admits_instead_of_failing() {
    // 1,000,000 a minute is finer than the millisecond counts: it must still admit, not divide
    // by a zero interval.
    let app =
        TestApp::spawn_with(&[("login_rate_per_ip", json!(1_000_000)), ("login_rate_per_email", json!(1_000_000))])
            .await;
    app.register_verified("alice@example.com", PASSWORD).await;
    for _ in 0..3 {
        let (status, _, body) = login_with(&app, &[("accept", "application/json")], WRONG).await;
        assert_eq!((status, error_code(&body)), (StatusCode::OK, "INVALID_CREDENTIALS".to_owned()), "{body}");
    }
}

#[tokio::test]
async fn an_address_refused_by_its_limit_spends_nothing_of_the_accounts() {
    let app = TestApp::spawn_with(&[
        ("trusted_proxies", json!("127.0.0.1")),
        ("login_rate_per_ip", json!(2)),
        ("login_rate_per_email", json!(3)),
    ])
    .await;
    app.register_verified("alice@example.com", PASSWORD).await;
    let attempt = async |client: &str| wrong_login_from(&app, client).await.1;
    for _ in 0..2 {
        assert_eq!(attempt("203.0.113.1").await, "INVALID_CREDENTIALS");
    }
    for _ in 0..3 {
        assert_eq!(attempt("203.0.113.1").await, "RATE_LIMITED", "the address's own limit");
    }
    // Two of alice's three checks are spent; the refused ones counted nothing.
    assert_eq!(attempt("203.0.113.2").await, "INVALID_CREDENTIALS");
    assert_eq!(attempt("203.0.113.3").await, "RATE_LIMITED", "her account's limit, from any address");
}

#[tokio::test]
async fn an_address_refused_by_its_limit_reserves_nothing_of_the_lockout_count() {
    // Lockout locks at the fifth wrong password; the address is refused after four.
    let app = TestApp::spawn_with(&[("trusted_proxies", json!("127.0.0.1")), ("login_rate_per_ip", json!(4))]).await;
    app.register_verified("alice@example.com", PASSWORD).await;
    for _ in 0..4 {
        assert_eq!(wrong_login_from(&app, "203.0.113.1").await.1, "INVALID_CREDENTIALS");
    }
    for _ in 0..3 {
        assert_eq!(wrong_login_from(&app, "203.0.113.1").await.1, "RATE_LIMITED");
    }
    // Four of her five attempts are spent, so her own password from elsewhere still gets in.
    let (status, _, body) = login_with(&app, &[("x-forwarded-for", "203.0.113.2")], PASSWORD).await;
    assert_eq!((status, error_code(&body)), (StatusCode::OK, "<none>".to_owned()), "{body}");
    assert!(body["data"]["login"]["challengeId"].is_string(), "{body}");
}
