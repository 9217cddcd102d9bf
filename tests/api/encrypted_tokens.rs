//! The token behaviours a client and a resource server rely on, in both token modes: signed
//! (default) and encrypted (`IDGATE_ACCESS_TOKEN_ENCRYPTION=dir`). In the encrypted mode a
//! service holding the key decrypts the JWE itself and verifies the JWT inside with the JWKS.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code};

const KEY: [u8; 32] = *b"0123456789abcdef0123456789abcdef";

/// What a resource server with the shared key does: open the JWE (RFC 7516, dir + A256GCM).
fn decrypt(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 5, "a JWE compact serialization: {token}");
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap_or_default()).unwrap_or_default();
    assert_eq!(header, json!({ "alg": "dir", "enc": "A256GCM", "cty": "JWT" }));
    let iv: [u8; 12] = URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default().try_into().unwrap_or([0; 12]);
    let mut sealed = URL_SAFE_NO_PAD.decode(parts[3]).unwrap_or_default();
    sealed.extend(URL_SAFE_NO_PAD.decode(parts[4]).unwrap_or_default());
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &KEY).unwrap_or_else(|e| panic!("{e}")));
    let plain = key
        .open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(parts[0].as_bytes()), &mut sealed)
        .unwrap_or_else(|e| panic!("cannot decrypt: {e}"));
    String::from_utf8(plain.to_vec()).unwrap_or_default()
}

/// Verifies a signed token with nothing but the JWKS, as any JWT library would.
async fn verify_with_jwks(app: &TestApp, jws: &str) -> Value {
    let jwks: JwkSet = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.address))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let kid = jsonwebtoken::decode_header(jws).unwrap_or_else(|e| panic!("{e}")).kid.unwrap_or_default();
    let jwk = jwks.find(&kid).unwrap_or_else(|| panic!("kid {kid} is not published"));
    let key = DecodingKey::from_jwk(jwk).unwrap_or_else(|e| panic!("{e}"));
    let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["idgate"]);
    jsonwebtoken::decode::<Value>(jws, &key, &validation).unwrap_or_else(|e| panic!("{e}")).claims
}

/// Flips one character in the middle of the token's last-but-one part.
fn tampered(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let target = parts.len() - 2;
    let middle = parts[target].len() / 2;
    let flipped = if parts[target].as_bytes()[middle] == b'A' { "B" } else { "A" };
    parts[target].replace_range(middle..=middle, flipped);
    parts.join(".")
}

#[tokio::test]
async fn access_tokens_work_alike_signed_and_encrypted() {
    for encrypted in [false, true] {
        let settings = if encrypted {
            vec![
                ("access_token_encryption", json!("dir")),
                ("token_encryption_key", json!(base64::engine::general_purpose::STANDARD.encode(KEY))),
            ]
        } else {
            vec![]
        };
        let app = TestApp::spawn_with(&settings).await;
        let alice = app.signed_in("alice@example.com").await;
        let inner = if encrypted { decrypt(&alice.access) } else { alice.access.clone() };
        assert_eq!(inner.split('.').count(), 3, "a signed JWT inside");
        let claims = verify_with_jwks(&app, &inner).await;
        assert_eq!(claims["sid"], alice.session_id.as_str(), "encrypted: {encrypted}");

        for _ in 0..2 {
            let me = app.me(&alice.access).await;
            assert_eq!(me["data"]["me"]["email"], "alice@example.com", "encrypted: {encrypted}: {me}");
        }
        let info =
            app.gql("query($t: String!) { tokenInfo(token: $t) { active } }", json!({ "t": alice.access })).await;
        assert_eq!(info["data"]["tokenInfo"]["active"], true, "{info}");
        assert_eq!(error_code(&app.me(&tampered(&alice.access)).await), "UNAUTHENTICATED", "encrypted: {encrypted}");

        let refreshed = app.refresh(&alice.refresh).await;
        let renewed = crate::helpers::tokens(&refreshed["data"]["refresh"]);
        assert_eq!(renewed.access.split('.').count(), if encrypted { 5 } else { 3 });
        assert!(app.me(&renewed.access).await["errors"].is_null());

        let logout = app.gql_as(&renewed.access, "mutation { logout }", json!({})).await;
        assert!(logout["errors"].is_null(), "{logout}");
        assert_eq!(error_code(&app.me(&renewed.access).await), "UNAUTHENTICATED", "revocation, encrypted: {encrypted}");
        let info =
            app.gql("query($t: String!) { tokenInfo(token: $t) { active } }", json!({ "t": renewed.access })).await;
        assert_eq!(info["data"]["tokenInfo"]["active"], false);
    }
}
