//! Signing-key rotation with `idgate keys`: a new key is published before it signs, old tokens
//! keep verifying until they expire or their key is retired, and instances on one database
//! agree. Instances reload keys every `key_refresh_secs` (1 s here), in real time; which key
//! signs follows each instance's clock, which the tests move.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};

use crate::helpers::{TestApp, Tokens, error_code, fresh_database};

/// Instances reload keys every second; a busy machine may take longer: conditions are polled
/// for up to this long.
const PATIENCE: Duration = Duration::from_secs(15);

/// Waits until `check` holds (polling), or fails with `what`.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(started.elapsed() < PATIENCE, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `idgate keys ...` against the app's database, as an operator would.
fn keys(app: &TestApp, args: &[&str]) -> (bool, String) {
    keys_with_delay(app, "1", args)
}

/// `idgate keys ...` with a publish delay of `seconds` (IDGATE_KEY_REFRESH_SECS): which key
/// signs now is the CLI's own judgement, on the real clock.
fn keys_with_delay(app: &TestApp, seconds: &str, args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_idgate"))
        .arg("keys")
        .args(args)
        .env("IDGATE_DATABASE_URL", &app.database_url)
        .env("IDGATE_KEY_REFRESH_SECS", seconds)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("cannot run idgate: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

async fn published(app: &TestApp) -> (Vec<String>, String) {
    let response = app.client.get(format!("{}/.well-known/jwks.json", app.address)).send().await;
    let response = response.unwrap_or_else(|e| panic!("{e}"));
    let cache = response.headers().get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body: Value = response.json().await.unwrap_or_else(|e| panic!("{e}"));
    let kids = body["keys"].as_array().into_iter().flatten().filter_map(|k| k["kid"].as_str()).map(str::to_owned);
    (kids.collect(), cache)
}

fn kid_of(tokens: &Tokens) -> String {
    let header = jsonwebtoken::decode_header(&tokens.access).unwrap_or_else(|e| panic!("{e}"));
    header.kid.unwrap_or_default()
}

async fn stored_keys_app(database_url: Option<String>) -> TestApp {
    let dir = Arc::new(tempfile::TempDir::new().unwrap_or_else(|e| panic!("{e}")));
    let url = match database_url {
        Some(url) => url,
        None => fresh_database(dir.path()).await,
    };
    // Instances behind one name share the public URL, and so the tokens' issuer.
    let settings =
        [("key_refresh_secs", json!(1)), ("login_otp", json!("off")), ("public_url", json!("http://idgate.test"))];
    TestApp::spawn_on(dir, url, &settings, false).await
}

async fn sign_in(app: &TestApp, email: &str) -> Tokens {
    let login = app.login(email, crate::helpers::PASSWORD).await;
    crate::helpers::tokens(&login["data"]["login"])
}

#[tokio::test]
async fn a_rotated_key_signs_after_its_publication_and_old_tokens_verify_until_retired_or_expired() {
    let app = stored_keys_app(None).await;
    app.register_verified("alice@example.com", crate::helpers::PASSWORD).await;
    let before = sign_in(&app, "alice@example.com").await;
    let first = kid_of(&before);
    let (kids, cache) = published(&app).await;
    assert_eq!((kids, cache.as_str()), (vec![first.clone()], "public, max-age=1"));

    let (ok, said) = keys(&app, &["rotate"]);
    assert!(ok, "{said}");
    // With the test's 1-second delay, a machine slow enough to take a second between the two
    // commands would see the new key signing already; an hour rules that out.
    let (ok, said) = keys_with_delay(&app, "3600", &["retire", &first]);
    assert!(!ok && said.contains("signs now"), "the signing key cannot be retired: {said}");
    eventually("the new key is published before it signs", || async { published(&app).await.0.len() == 2 }).await;
    assert_eq!(kid_of(&sign_in(&app, "alice@example.com").await), first, "not signing yet");

    app.clock.advance(chrono::Duration::seconds(5));
    let mut after = sign_in(&app, "alice@example.com").await;
    let started = std::time::Instant::now();
    while kid_of(&after) == first {
        assert!(started.elapsed() < PATIENCE, "the new key signs once published long enough");
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = sign_in(&app, "alice@example.com").await;
    }
    let second = kid_of(&after);
    assert!(app.me(&before.access).await["errors"].is_null(), "a token of the old key keeps verifying");
    assert!(app.me(&after.access).await["errors"].is_null());
    let (_, listing) = keys(&app, &["list"]);
    assert!(listing.contains("verifying until") && listing.contains("signing"), "{listing}");

    let (ok, said) = keys(&app, &["retire", &first]);
    assert!(ok, "{said}");
    eventually("a retired key's tokens are refused", || async {
        error_code(&app.me(&before.access).await) == "UNAUTHENTICATED"
    })
    .await;
    assert!(app.me(&after.access).await["errors"].is_null());
    assert_eq!(published(&app).await.0, vec![second.clone()]);

    // Without retirement, an old key leaves the JWKS on its own once its tokens have expired.
    let (ok, said) = keys(&app, &["rotate"]);
    assert!(ok, "{said}");
    app.clock.advance(chrono::Duration::seconds(5));
    eventually("the third key is published", || async { published(&app).await.0.len() == 2 }).await;
    assert!(published(&app).await.0.contains(&second), "the second key still verifies its tokens");
    app.clock.advance(chrono::Duration::seconds(900 + 31));
    eventually("the second key leaves once its tokens expired", || async { published(&app).await.0.len() == 1 }).await;
    assert!(!published(&app).await.0.contains(&second));
}

#[tokio::test]
async fn two_instances_on_one_database_agree_on_the_keys() {
    let one = stored_keys_app(None).await;
    let two = stored_keys_app(Some(one.database_url.clone())).await;
    one.register_verified("bob@example.com", crate::helpers::PASSWORD).await;
    let from_one = sign_in(&one, "bob@example.com").await;
    assert!(two.me(&from_one.access).await["errors"].is_null(), "the first start stored one key for both");

    let (ok, said) = keys(&one, &["rotate"]);
    assert!(ok, "{said}");
    one.clock.advance(chrono::Duration::seconds(5));
    two.clock.advance(chrono::Duration::seconds(5));
    eventually("both instances load the new key", || async {
        published(&one).await.0.len() == 2 && published(&two).await.0.len() == 2
    })
    .await;
    let mut from_two = sign_in(&two, "bob@example.com").await;
    let started = std::time::Instant::now();
    while kid_of(&from_two) == kid_of(&from_one) {
        assert!(started.elapsed() < PATIENCE, "two signs with the new key");
        tokio::time::sleep(Duration::from_millis(100)).await;
        from_two = sign_in(&two, "bob@example.com").await;
    }
    assert!(one.me(&from_two.access).await["errors"].is_null(), "one verifies what two signs with the new key");
    assert!(two.me(&from_one.access).await["errors"].is_null());
    assert_eq!(published(&one).await.0, published(&two).await.0);
}

#[tokio::test]
async fn configured_keys_may_be_several_and_the_first_signs() {
    use secrecy::ExposeSecret;
    let first = idgate::auth::keys::generate_rsa_pem().unwrap_or_else(|e| panic!("{e:?}"));
    let second = idgate::auth::keys::generate_rsa_pem().unwrap_or_else(|e| panic!("{e:?}"));
    let pems = format!("{}\n{}", first.expose_secret(), second.expose_secret());
    let app = TestApp::spawn_with(&[("jwt_private_key", json!(pems)), ("jwt_key_id", json!("current"))]).await;
    let alice = app.signed_in("alice@example.com").await;
    assert_eq!(kid_of(&alice), "current");
    let (kids, _) = published(&app).await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    let older = kids.iter().find(|k| *k != "current").cloned().unwrap_or_default();

    // A token the second key signed (before it was moved to second place) still verifies.
    let mut header = jsonwebtoken::decode_header(&alice.access).unwrap_or_else(|e| panic!("{e}"));
    header.kid = Some(older);
    let payload = alice.access.split('.').nth(1).unwrap_or_default();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap_or_default(),
    )
    .unwrap_or_default();
    let key =
        jsonwebtoken::EncodingKey::from_rsa_pem(second.expose_secret().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let by_second = jsonwebtoken::encode(&header, &claims, &key).unwrap_or_else(|e| panic!("{e}"));
    assert!(app.me(&by_second).await["errors"].is_null());
}
