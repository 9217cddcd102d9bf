//! Browser clients: tokens in HttpOnly cookies instead of the body, refresh and logout through
//! them, CSRF proof on cookie-authenticated mutations, and CORS with credentials.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, VERIFY_OTP};

/// The `name=value` pairs a response set, by cookie name, with the whole Set-Cookie line.
fn set_cookies(response: &reqwest::Response) -> Vec<(String, String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|line| {
            let (pair, _) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=')?;
            Some((name.to_owned(), value.to_owned(), line.to_owned()))
        })
        .collect()
}

fn cookie_value(cookies: &[(String, String, String)], name: &str) -> String {
    cookies.iter().find(|c| c.0 == name).map(|c| c.1.clone()).unwrap_or_else(|| panic!("no {name} in {cookies:?}"))
}

/// Logs alice in with the cookie transport; returns the Set-Cookie triples and the body.
async fn cookie_login(app: &TestApp) -> (Vec<(String, String, String)>, Value) {
    app.register_verified("alice@example.com", PASSWORD).await;
    let login = app.login("alice@example.com", PASSWORD).await;
    let challenge = login["data"]["login"]["challengeId"].as_str().unwrap_or_default().to_owned();
    let code = app.last_code_for("alice@example.com");
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("x-idgate-token-transport", "cookie")
        .json(&json!({ "query": VERIFY_OTP, "variables": { "input": { "challengeId": challenge, "code": code } } }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let cookies = set_cookies(&response);
    (cookies, response.json().await.unwrap_or_default())
}

/// A POST with a Cookie header built from `pairs` and extra `headers`.
async fn post_with(app: &TestApp, pairs: &[(&str, &str)], headers: &[(&str, &str)], query: &str) -> reqwest::Response {
    let cookie = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
    let mut request = app.client.post(format!("{}/graphql", app.address)).header("cookie", cookie);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.json(&json!({ "query": query })).send().await.unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_cookie_login_sets_http_only_secure_cookies_and_leaves_tokens_out_of_the_body() {
    let app = TestApp::spawn().await;
    let (cookies, body) = cookie_login(&app).await;
    assert!(body["data"]["verifyOtp"]["accessToken"].is_null(), "{body}");
    assert!(body["data"]["verifyOtp"]["refreshToken"].is_null(), "{body}");
    assert_eq!(body["data"]["verifyOtp"]["user"]["email"], "alice@example.com");
    let line = |name: &str| cookies.iter().find(|c| c.0 == name).map(|c| c.2.clone()).unwrap_or_default();
    let access = line("__Host-idgate-access");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=900"] {
        assert!(access.contains(attribute), "{attribute}: {access}");
    }
    let refresh = line("__Secure-idgate-refresh");
    assert!(refresh.contains("HttpOnly") && refresh.contains("Path=/graphql") && refresh.contains("Max-Age=2592000"));
    let csrf = line("__Host-idgate-csrf");
    assert!(!csrf.is_empty() && !csrf.contains("HttpOnly"), "readable by the page: {csrf}");
}

#[tokio::test]
async fn a_cookie_reads_me_and_mutations_need_the_csrf_header_and_a_same_site_origin() {
    let app = TestApp::spawn().await;
    let (cookies, _) = cookie_login(&app).await;
    let access = cookie_value(&cookies, "__Host-idgate-access");
    let csrf = cookie_value(&cookies, "__Host-idgate-csrf");
    let me = post_with(&app, &[("__Host-idgate-access", &access)], &[], "{ me { email } }").await;
    let me: Value = me.json().await.unwrap_or_default();
    assert_eq!(me["data"]["me"]["email"], "alice@example.com", "queries need no CSRF proof: {me}");

    let jar = [("__Host-idgate-access", access.as_str()), ("__Host-idgate-csrf", csrf.as_str())];
    let logout_all = "mutation { logoutAll }";
    let missing = post_with(&app, &jar, &[], logout_all).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let body: Value = missing.json().await.unwrap_or_default();
    assert_eq!(body["errors"][0]["extensions"]["reason"], "CSRF_TOKEN_MISSING", "{body}");
    let wrong = post_with(&app, &jar, &[("x-csrf-token", "forged.token")], logout_all).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let foreign =
        post_with(&app, &jar, &[("x-csrf-token", &csrf), ("origin", "https://evil.example.net")], logout_all).await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let body: Value = foreign.json().await.unwrap_or_default();
    assert_eq!(body["errors"][0]["extensions"]["reason"], "CSRF_ORIGIN");
    // Nothing ran: the session still answers.
    let still = post_with(&app, &[("__Host-idgate-access", &access)], &[], "{ me { email } }").await;
    assert_eq!(still.json::<Value>().await.unwrap_or_default()["data"]["me"]["email"], "alice@example.com");

    let own_origin = app.address.clone();
    let done = post_with(&app, &jar, &[("x-csrf-token", &csrf), ("origin", &own_origin)], logout_all).await;
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(done.json::<Value>().await.unwrap_or_default()["data"]["logoutAll"], 1);
}

#[tokio::test]
async fn refresh_and_logout_work_from_the_refresh_cookie() {
    let app = TestApp::spawn().await;
    let (cookies, _) = cookie_login(&app).await;
    let refresh = cookie_value(&cookies, "__Secure-idgate-refresh");
    let csrf = cookie_value(&cookies, "__Host-idgate-csrf");
    let jar = [("__Secure-idgate-refresh", refresh.as_str()), ("__Host-idgate-csrf", csrf.as_str())];
    let proof = [("x-csrf-token", csrf.as_str()), ("x-idgate-token-transport", "cookie")];
    let refreshed = post_with(&app, &jar, &proof, "mutation { refresh { accessToken expiresIn } }").await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let renewed = set_cookies(&refreshed);
    let body: Value = refreshed.json().await.unwrap_or_default();
    assert!(body["data"]["refresh"]["accessToken"].is_null() && body["data"]["refresh"]["expiresIn"] == 900, "{body}");
    let new_refresh = cookie_value(&renewed, "__Secure-idgate-refresh");
    assert_ne!(new_refresh, refresh, "rotated");
    let new_csrf = cookie_value(&renewed, "__Host-idgate-csrf");

    let jar = [("__Secure-idgate-refresh", new_refresh.as_str()), ("__Host-idgate-csrf", new_csrf.as_str())];
    let logout = post_with(&app, &jar, &[("x-csrf-token", &new_csrf)], "mutation { logout }").await;
    let cleared = set_cookies(&logout);
    assert_eq!(logout.json::<Value>().await.unwrap_or_default()["data"]["logout"], true);
    for name in ["__Host-idgate-access", "__Secure-idgate-refresh"] {
        let line = cleared.iter().find(|c| c.0 == name).map(|c| c.2.clone()).unwrap_or_default();
        assert!(line.contains("Max-Age=0"), "{name} cleared: {cleared:?}");
    }
    let again = post_with(&app, &jar, &[("x-csrf-token", &new_csrf)], "mutation { refresh { expiresIn } }").await;
    assert_eq!(again.json::<Value>().await.unwrap_or_default()["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn cors_with_credentials_answers_listed_origins_only() {
    let app = TestApp::spawn_with(&[("cors_origins", json!("https://app.example.com"))]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, format!("{}/graphql", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type, x-csrf-token, x-idgate-token-transport")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap_or_else(|e| panic!("{e}"));
    let header =
        |r: &reqwest::Response, name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(header(&allowed, "access-control-allow-origin").as_deref(), Some("https://app.example.com"));
    assert_eq!(header(&allowed, "access-control-allow-credentials").as_deref(), Some("true"));
    let headers = header(&allowed, "access-control-allow-headers").unwrap_or_default().to_lowercase();
    assert!(headers.contains("x-csrf-token") && headers.contains("x-idgate-token-transport"), "{headers}");
    let denied = preflight("https://evil.example.net").await.unwrap_or_else(|e| panic!("{e}"));
    assert!(header(&denied, "access-control-allow-origin").is_none());
    assert!(header(&denied, "access-control-allow-origin") != Some("*".to_owned()));
}
