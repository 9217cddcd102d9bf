use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, error_code};

const REGISTER_FULL: &str = "mutation($input: RegisterInput!) { register(input: $input) { user { \
    id email username firstName lastName phone dateOfBirth gender role isActive emailVerified } } }";

#[tokio::test]
async fn register_returns_the_new_user_with_a_normalised_email_and_phone() {
    let app = TestApp::spawn().await;
    let response = app
        .gql(
            REGISTER_FULL,
            json!({ "input": {
                "email": "  Alice.Smith@Example.COM ", "password": PASSWORD, "username": "Alice_S",
                "firstName": "Alice", "lastName": "Smith", "phone": "+1 415 555 2671",
                "dateOfBirth": "1990-04-01", "gender": "FEMALE"
            } }),
        )
        .await;
    let user = &response["data"]["register"]["user"];
    assert!(response["errors"].is_null(), "{response}");
    assert_eq!(user["email"], "alice.smith@example.com");
    assert_eq!(user["username"], "alice_s");
    assert_eq!(user["phone"], "+14155552671");
    assert_eq!(user["dateOfBirth"], "1990-04-01");
    assert_eq!(user["gender"], "FEMALE");
    assert_eq!(user["role"], "USER");
    assert_eq!(user["isActive"], true);
    assert_eq!(user["emailVerified"], false);
}

#[tokio::test]
async fn register_refuses_a_weak_password_naming_the_field_and_the_reason() {
    let app = TestApp::spawn().await;
    for (password, reason) in [
        ("short1!", "at least 12 characters"),
        ("password1234", "too weak"),
        ("bob.builder-zebra-Qx81", "email address, username or name"),
        ("my idgate vault Qx81!", "must not contain \"idgate\""),
    ] {
        let response = app.register("bob.builder@example.com", password).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{password}: {response}");
        assert_eq!(response["errors"][0]["extensions"]["field"], "password");
        let message = response["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{password}: {message}");
    }
}

#[tokio::test]
async fn register_refuses_malformed_and_oversized_inputs_naming_the_field() {
    let app = TestApp::spawn().await;
    let long_email = format!("{}@example.com", "a".repeat(250));
    let cases = [
        (json!({ "email": "not-an-email", "password": PASSWORD }), "email"),
        (json!({ "email": long_email, "password": PASSWORD }), "email"),
        (json!({ "email": "c@example.com", "password": "x".repeat(129) }), "password"),
        (json!({ "email": "c@example.com", "password": PASSWORD, "phone": "555-1234" }), "phone"),
        (json!({ "email": "c@example.com", "password": PASSWORD, "username": "a<b>" }), "username"),
        (json!({ "email": "c@example.com", "password": PASSWORD, "firstName": "x".repeat(151) }), "firstName"),
        (json!({ "email": "c@example.com", "password": PASSWORD, "dateOfBirth": "2999-01-01" }), "dateOfBirth"),
    ];
    for (input, field) in cases {
        let response = app
            .gql(
                "mutation($input: RegisterInput!) { register(input: $input) { user { id } } }",
                json!({ "input": input }),
            )
            .await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{field}: {response}");
        assert_eq!(response["errors"][0]["extensions"]["field"], field, "{response}");
    }
    // Nothing was half-created: the address is still free for a valid registration and login.
    app.register_verified("c@example.com", PASSWORD).await;
    assert_eq!(app.login("c@example.com", PASSWORD).await["data"]["login"]["__typename"], "OtpChallenge");
}

#[tokio::test]
async fn register_with_a_taken_email_answers_like_a_new_one_and_tells_the_owner() {
    let app = TestApp::spawn().await;
    let first = app.register_verified("dana@example.com", PASSWORD).await;
    let second = app.register("DANA@example.com", "another passphrase 4471 zq").await;
    assert!(second["errors"].is_null(), "{second}");
    let (a, b) = (&first["data"]["register"]["user"], &second["data"]["register"]["user"]);
    assert_eq!(a["email"], b["email"]);
    assert_eq!(a["role"], b["role"]);
    assert_ne!(a["id"], b["id"], "the answer must not expose the existing account's id");
    let mails = app.wait_for_mails("dana@example.com", 2).await;
    assert_eq!(mails.len(), 2, "the verification mail, then one notice");
    assert!(mails[1].contains("Someone tried to create"), "{}", mails[1]);
    // The original password still works, the second one does not.
    assert_eq!(app.login("dana@example.com", PASSWORD).await["data"]["login"]["__typename"], "OtpChallenge");
    let login = app.login("dana@example.com", "another passphrase 4471 zq").await;
    assert_eq!(error_code(&login), "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn register_with_a_taken_username_is_a_conflict_on_username() {
    let app = TestApp::spawn().await;
    let mutation = "mutation($input: RegisterInput!) { register(input: $input) { user { id } } }";
    let first = app
        .gql(mutation, json!({ "input": { "email": "e1@example.com", "password": PASSWORD, "username": "eve" } }))
        .await;
    assert!(first["errors"].is_null(), "{first}");
    let second = app
        .gql(mutation, json!({ "input": { "email": "e2@example.com", "password": PASSWORD, "username": "EVE" } }))
        .await;
    assert_eq!(error_code(&second), "CONFLICT");
    assert_eq!(second["errors"][0]["extensions"]["field"], "username");
}

#[tokio::test]
async fn registration_is_rate_limited_per_ip() {
    let app = TestApp::spawn_with(&[("register_rate_per_ip", json!(2))]).await;
    for n in 0..2 {
        let response = app.register(&format!("r{n}@example.com"), PASSWORD).await;
        assert!(response["errors"].is_null(), "{response}");
    }
    let response = app.register("r3@example.com", PASSWORD).await;
    assert_eq!(error_code(&response), "RATE_LIMITED");
    assert!(response["errors"][0]["extensions"]["retryAfter"].as_u64().unwrap_or(0) > 0);
}
