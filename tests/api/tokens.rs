use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Duration;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode, jwk::JwkSet,
};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, fresh_database, re_signed};

async fn jwks(app: &TestApp) -> JwkSet {
    let response = app.client.get(format!("{}/.well-known/jwks.json", app.address)).send().await;
    let response = response.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), 200);
    response.json().await.unwrap_or_else(|e| panic!("{e}"))
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap_or_default();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap_or_default()).unwrap_or_default()
}

fn with_claims(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = claims_of(token);
    edit(&mut claims);
    format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2])
}

#[tokio::test]
async fn access_tokens_verify_against_the_published_keys_with_the_documented_claims() {
    let app = TestApp::spawn().await;
    let user = app.signed_in("alice@example.com").await;
    let header = decode_header(&user.access).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let set = jwks(&app).await;
    let jwk = set.find(header.kid.as_deref().unwrap_or_default()).unwrap_or_else(|| panic!("kid not published"));
    let key = DecodingKey::from_jwk(jwk).unwrap_or_else(|e| panic!("{e}"));
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["idgate"]);
    validation.set_issuer(&[app.address.as_str()]);
    let data = decode::<Value>(&user.access, &key, &validation).unwrap_or_else(|e| panic!("{e}"));
    let claims = data.claims;
    for claim in ["iss", "aud", "sub", "sid", "role", "iat", "exp", "jti"] {
        assert!(!claims[claim].is_null(), "missing {claim}");
    }
    assert_eq!(claims["sid"], user.session_id.as_str());
    assert_eq!(claims["role"], "USER");
    assert_eq!(claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0), 900);
    let text = serde_json::to_string(&set).unwrap_or_default();
    assert!(!text.contains("\"d\""), "the JWKS must hold public keys only");
}

#[tokio::test]
async fn bad_tokens_of_every_kind_are_unauthenticated_never_an_error_page() {
    let app = TestApp::spawn().await;
    let user = app.signed_in("alice@example.com").await;
    let parts: Vec<&str> = user.access.split('.').collect();
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
    // HS256 signed with the public key's bytes: the classic algorithm-confusion attack.
    let set = jwks(&app).await;
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims_of(&user.access),
        &EncodingKey::from_secret(serde_json::to_string(&set).unwrap_or_default().as_bytes()),
    )
    .unwrap_or_default();
    let foreign_key = idgate::auth::keys::generate_rsa_pem().unwrap_or_else(|e| panic!("{e:?}"));
    let mut foreign_header = Header::new(Algorithm::RS256);
    foreign_header.kid = decode_header(&user.access).ok().and_then(|h| h.kid);
    foreign_header.typ = Some("at+jwt".into());
    let foreign = encode(
        &foreign_header,
        &claims_of(&user.access),
        &EncodingKey::from_rsa_pem(secrecy::ExposeSecret::expose_secret(&foreign_key).as_bytes())
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_default();
    let bad = [
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        format!("{none_header}.{}.", parts[1]),
        with_claims(&user.access, |c| c["sub"] = json!("00000000-0000-0000-0000-000000000000")),
        with_claims(&user.access, |c| c["aud"] = json!("someone-else")),
        with_claims(&user.access, |c| c["role"] = json!("SUPERUSER")),
        confused,
        foreign,
        format!("{}.{}.{}", parts[0], parts[1], "x".repeat(parts[2].len())),
    ];
    for token in bad {
        let response = app.me(&token).await;
        assert_eq!(error_code(&response), "UNAUTHENTICATED", "{token}: {response}");
    }
    // The genuine token still works after all that.
    assert!(app.me(&user.access).await["errors"].is_null());
}

#[tokio::test]
async fn an_expired_access_token_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let user = app.signed_in("alice@example.com").await;
    assert!(app.me(&user.access).await["errors"].is_null(), "cached as valid");
    app.clock.advance(Duration::minutes(16));
    assert_eq!(error_code(&app.me(&user.access).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn me_without_a_token_is_unauthenticated_and_other_schemes_are_refused() {
    let app = TestApp::spawn().await;
    assert_eq!(error_code(&app.gql("{ me { id } }", json!({})).await), "UNAUTHENTICATED");
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("Authorization", "Basic YWxpY2U6cGFzcw==")
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let body: Value = response.json().await.unwrap_or_default();
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_generated_signing_key_is_kept_across_restarts() {
    let dir = std::sync::Arc::new(tempfile::TempDir::new().unwrap_or_else(|e| panic!("{e}")));
    let url = fresh_database(dir.path()).await;
    // No key configured: one is generated at first start, and the restart finds it stored.
    let without_key = TestApp::spawn_on(dir, url, &[], false).await;
    let user = without_key.signed_in("alice@example.com").await;
    let generated = jwks(&without_key).await.keys[0].common.key_id.clone();
    let restarted = without_key.restart().await;
    assert_eq!(jwks(&restarted).await.keys[0].common.key_id, generated);
    let me = restarted.me(&user.access).await;
    assert_eq!(me["data"]["me"]["email"], "alice@example.com", "{me}");
}

#[tokio::test]
async fn a_token_not_valid_before_a_future_time_is_refused_until_then() {
    let app = TestApp::spawn().await;
    let user = app.signed_in("alice@example.com").await;
    let issued_at = claims_of(&user.access)["iat"].as_i64().unwrap_or_default();
    let later = re_signed(&user.access, |_, claims| claims["nbf"] = json!(issued_at + 600));
    assert_eq!(error_code(&app.me(&later).await), "UNAUTHENTICATED");
    let now = re_signed(&user.access, |_, claims| claims["nbf"] = json!(issued_at));
    assert_eq!(app.me(&now).await["data"]["me"]["email"], "alice@example.com", "a past nbf is fine");
    app.clock.advance(Duration::seconds(600));
    assert_eq!(app.me(&later).await["data"]["me"]["email"], "alice@example.com", "valid from then on");
}

#[tokio::test]
async fn a_token_with_a_critical_header_extension_is_refused() {
    let app = TestApp::spawn().await;
    let user = app.signed_in("alice@example.com").await;
    let critical = re_signed(&user.access, |header, _| header.crit = Some(vec!["exp".into()]));
    assert_eq!(error_code(&app.me(&critical).await), "UNAUTHENTICATED");
}
