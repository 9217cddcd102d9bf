//! Social sign-in against fake providers on 127.0.0.1 (`support::providers`): the redirect flow
//! end to end, ID tokens and access tokens from provider SDKs, the identity rules (new account,
//! returning user, address collisions, pre-registration), linking and unlinking, and providers
//! that fail.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    helpers::{PASSWORD, TestApp, Tokens, error_code, tokens},
    support::providers::{
        Behaviour, FACEBOOK_APP_ID, FACEBOOK_APP_SECRET, GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET, GOOGLE_CLIENT_ID,
        GOOGLE_CLIENT_SECRET, Idp, KEYCLOAK_CLIENT_ID, KEYCLOAK_CLIENT_SECRET, Person, Providers,
    },
};

const CALLBACK: &str = "http://app.test/callback";
const OTHER_CALLBACK: &str = "http://app.test/settings/linked";

const START: &str =
    "mutation($input: SocialAuthStartInput!) { socialAuthStart(input: $input) { authorizationUrl state } }";
const SOCIAL_AUTH: &str = "mutation($input: SocialAuthInput!) { socialAuth(input: $input) { __typename \
    ... on AuthPayload { accessToken refreshToken user { id email emailVerified firstName lastName } session { id deviceName } } \
    ... on OtpChallenge { challengeId channel destination } } }";
const LINK: &str = "mutation($input: LinkSocialAccountInput!) { linkSocialAccount(input: $input) { provider email linkedAt lastUsedAt } }";
const UNLINK: &str = "mutation($provider: String!) { unlinkSocialAccount(provider: $provider) }";
const MINE: &str = "{ mySocialAccounts { provider email } }";
const ME: &str = "{ me { id email emailVerified firstName lastName } }";

/// The settings that point idgate at the fake providers, plus `extra`.
fn settings(providers: &Providers, extra: &[(&str, Value)]) -> Vec<(String, Value)> {
    let keycloak = json!([{
        "name": "keycloak",
        "issuer": providers.issuer(Idp::Keycloak),
        "client_id": KEYCLOAK_CLIENT_ID,
        "client_secret": KEYCLOAK_CLIENT_SECRET,
    }]);
    let mut pairs: Vec<(String, Value)> = [
        ("google_client_id", json!(GOOGLE_CLIENT_ID)),
        ("google_client_secret", json!(GOOGLE_CLIENT_SECRET)),
        ("google_issuer", json!(providers.issuer(Idp::Google))),
        ("github_client_id", json!(GITHUB_CLIENT_ID)),
        ("github_client_secret", json!(GITHUB_CLIENT_SECRET)),
        ("github_url", json!(providers.github_url())),
        ("github_api_url", json!(providers.github_api_url())),
        ("facebook_app_id", json!(FACEBOOK_APP_ID)),
        ("facebook_app_secret", json!(FACEBOOK_APP_SECRET)),
        ("facebook_url", json!(providers.facebook_url())),
        ("facebook_graph_url", json!(providers.facebook_graph_url())),
        ("oidc_providers", json!(keycloak.to_string())),
        ("social_redirect_uris", json!(format!("{CALLBACK},{OTHER_CALLBACK}"))),
        ("social_timeout_secs", json!(1)),
        ("register_rate_per_ip", json!(1000)),
        ("login_rate_per_ip", json!(1000)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    pairs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    pairs
}

async fn setup(extra: &[(&str, Value)]) -> (Providers, TestApp) {
    let providers = Providers::start().await;
    let pairs = settings(&providers, extra);
    let borrowed: Vec<(&str, Value)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let app = TestApp::spawn_with(&borrowed).await;
    (providers, app)
}

/// `socialAuthStart`, checked, then the person consenting: the code and state the browser
/// brings back to the redirect URI.
async fn redirect_flow(app: &TestApp, providers: &Providers, provider: &str, person: &Person) -> (String, String) {
    let started = app.gql(START, json!({ "input": { "provider": provider, "redirectUri": CALLBACK } })).await;
    let url = started["data"]["socialAuthStart"]["authorizationUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("no authorization URL: {started}"));
    assert!(url.contains("code_challenge_method=S256") && url.contains("code_challenge="), "{url}");
    let back = providers.consent(url, person);
    assert_eq!(back.state, started["data"]["socialAuthStart"]["state"].as_str().unwrap_or_default());
    assert_eq!(back.redirect_uri, CALLBACK);
    (back.code, back.state)
}

async fn with_code(app: &TestApp, provider: &str, code: &str, state: &str) -> Value {
    app.gql(
        SOCIAL_AUTH,
        json!({ "input": {
            "provider": provider, "code": code, "state": state, "redirectUri": CALLBACK, "deviceName": "phone"
        } }),
    )
    .await
}

async fn with_id_token(app: &TestApp, provider: &str, token: &str) -> Value {
    app.gql(SOCIAL_AUTH, json!({ "input": { "provider": provider, "idToken": token } })).await
}

async fn with_access_token(app: &TestApp, provider: &str, token: &str) -> Value {
    app.gql(SOCIAL_AUTH, json!({ "input": { "provider": provider, "accessToken": token } })).await
}

/// The AuthPayload of a `socialAuth` answer, or a panic naming what came instead.
fn signed_in(response: &Value) -> (Tokens, Value) {
    let payload = &response["data"]["socialAuth"];
    assert_eq!(payload["__typename"], "AuthPayload", "{response}");
    (tokens(payload), payload["user"].clone())
}

fn field(response: &Value) -> &str {
    response["errors"][0]["extensions"]["field"].as_str().unwrap_or("<none>")
}

async fn audit_kinds(app: &TestApp, root: &Tokens) -> Vec<String> {
    let trail =
        app.gql_as(&root.access, "{ auditEvents(first: 100) { edges { node { kind detail } } } }", json!({})).await;
    trail["data"]["auditEvents"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{trail}"))
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn auth_config_lists_the_enabled_providers_and_their_flows() {
    let (_providers, app) = setup(&[]).await;
    let config = app.gql("{ authConfig { socialProviders { name kind redirectFlow tokenFlow } } }", json!({})).await;
    assert_eq!(
        config["data"]["authConfig"]["socialProviders"],
        json!([
            { "name": "GOOGLE", "kind": "GOOGLE", "redirectFlow": true, "tokenFlow": true },
            { "name": "FACEBOOK", "kind": "FACEBOOK", "redirectFlow": true, "tokenFlow": true },
            { "name": "GITHUB", "kind": "GITHUB", "redirectFlow": true, "tokenFlow": true },
            { "name": "KEYCLOAK", "kind": "OIDC", "redirectFlow": true, "tokenFlow": true },
        ]),
        "{config}"
    );
    let bare = TestApp::spawn().await;
    let none = bare.gql("{ authConfig { socialProviders { name } } }", json!({})).await;
    assert_eq!(none["data"]["authConfig"]["socialProviders"], json!([]), "{none}");
    let refused = bare.gql(START, json!({ "input": { "provider": "GOOGLE", "redirectUri": CALLBACK } })).await;
    assert_eq!((error_code(&refused).as_str(), field(&refused)), ("BAD_USER_INPUT", "provider"), "{refused}");
}

#[tokio::test]
async fn a_new_google_user_signs_in_through_the_redirect_flow_and_comes_back_to_the_same_account() {
    let (providers, app) = setup(&[]).await;
    let ada = Person::new("g-100", "ada@example.com");
    let (code, state) = redirect_flow(&app, &providers, "google", &ada).await;
    let first = with_code(&app, "GOOGLE", &code, &state).await;
    let (session, user) = signed_in(&first);
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["emailVerified"], true, "the provider vouched for the address");
    assert_eq!((user["firstName"].as_str(), user["lastName"].as_str()), (Some("Ada"), Some("Lovelace")));
    assert_eq!(first["data"]["socialAuth"]["session"]["deviceName"], "phone");
    let me = app.gql_as(&session.access, ME, json!({})).await;
    assert_eq!(me["data"]["me"]["id"], user["id"], "{me}");
    let mine = app.gql_as(&session.access, MINE, json!({})).await;
    assert_eq!(mine["data"]["mySocialAccounts"], json!([{ "provider": "GOOGLE", "email": "ada@example.com" }]));

    // The state was used: replaying it is refused, and the provider's code is not asked again.
    let replay = with_code(&app, "GOOGLE", &code, &state).await;
    assert_eq!((error_code(&replay).as_str(), field(&replay)), ("BAD_USER_INPUT", "state"), "{replay}");

    let (code, state) = redirect_flow(&app, &providers, "GOOGLE", &ada).await;
    let (_, again) = signed_in(&with_code(&app, "GOOGLE", &code, &state).await);
    assert_eq!(again["id"], user["id"], "a returning identity signs in to its account");

    // A generic OpenID Connect provider works the same way, without code of its own.
    let (code, state) = redirect_flow(&app, &providers, "keycloak", &Person::new("kc-1", "kc@example.com")).await;
    let (_, keycloak_user) = signed_in(&with_code(&app, "KEYCLOAK", &code, &state).await);
    assert_eq!(keycloak_user["email"], "kc@example.com");
}

#[tokio::test]
async fn the_state_is_bound_to_its_provider_and_redirect_uri_and_expires() {
    let (providers, app) = setup(&[]).await;
    let ada = Person::new("g-1", "ada@example.com");
    let unlisted =
        app.gql(START, json!({ "input": { "provider": "GOOGLE", "redirectUri": "https://evil.test/cb" } })).await;
    assert_eq!((error_code(&unlisted).as_str(), field(&unlisted)), ("BAD_USER_INPUT", "redirectUri"), "{unlisted}");

    let (code, state) = redirect_flow(&app, &providers, "GOOGLE", &ada).await;
    let foreign_provider = with_code(&app, "GITHUB", &code, &state).await;
    assert_eq!((error_code(&foreign_provider).as_str(), field(&foreign_provider)), ("BAD_USER_INPUT", "state"));

    let (code, state) = redirect_flow(&app, &providers, "GOOGLE", &ada).await;
    let other_uri = app
        .gql(
            SOCIAL_AUTH,
            json!({ "input": { "provider": "GOOGLE", "code": code, "state": state, "redirectUri": OTHER_CALLBACK } }),
        )
        .await;
    assert_eq!((error_code(&other_uri).as_str(), field(&other_uri)), ("BAD_USER_INPUT", "state"), "{other_uri}");

    let (code, state) = redirect_flow(&app, &providers, "GOOGLE", &ada).await;
    app.clock.advance(chrono::Duration::seconds(601));
    let expired = with_code(&app, "GOOGLE", &code, &state).await;
    assert_eq!((error_code(&expired).as_str(), field(&expired)), ("BAD_USER_INPUT", "state"), "{expired}");

    let made_up = with_code(&app, "GOOGLE", "some-code", &"x".repeat(43)).await;
    assert_eq!((error_code(&made_up).as_str(), field(&made_up)), ("BAD_USER_INPUT", "state"));
    assert!(
        !providers.calls().iter().any(|c| c.ends_with("/token")),
        "no code was redeemed for a bad state: {:?}",
        providers.calls()
    );
}

#[tokio::test]
async fn id_tokens_sign_in_only_when_signed_by_the_provider_for_us_and_fresh() {
    let (providers, app) = setup(&[]).await;
    let ada = Person::new("g-7", "ada@example.com");
    let good = providers.id_token(Idp::Google, &ada, |_| {});
    let (_, user) = signed_in(&with_id_token(&app, "GOOGLE", &good).await);
    assert_eq!(user["email"], "ada@example.com");

    let with_nonce = providers.id_token(Idp::Google, &ada, |c| c["nonce"] = json!("n-123"));
    let matched = app
        .gql(SOCIAL_AUTH, json!({ "input": { "provider": "GOOGLE", "idToken": with_nonce, "nonce": "n-123" } }))
        .await;
    assert_eq!(signed_in(&matched).1["id"], user["id"]);

    let now = chrono::Utc::now().timestamp();
    let bad_tokens = [
        ("wrong audience", providers.id_token(Idp::Google, &ada, |c| c["aud"] = json!("someone-else"))),
        ("wrong issuer", providers.id_token(Idp::Google, &ada, |c| c["iss"] = json!("https://evil.test"))),
        ("expired", providers.id_token(Idp::Google, &ada, |c| c["exp"] = json!(now - 600))),
        ("bad signature", providers.forged_id_token(Idp::Google, &ada)),
        ("another provider's", providers.id_token(Idp::Keycloak, &ada, |_| {})),
        ("not a JWT", "not.a.jwt".to_owned()),
    ];
    for (what, token) in bad_tokens {
        let refused = with_id_token(&app, "GOOGLE", &token).await;
        assert_eq!(
            (error_code(&refused).as_str(), field(&refused)),
            ("BAD_USER_INPUT", "idToken"),
            "{what}: {refused}"
        );
    }
    let wrong_nonce = app
        .gql(SOCIAL_AUTH, json!({ "input": { "provider": "GOOGLE", "idToken": with_nonce, "nonce": "n-999" } }))
        .await;
    assert_eq!((error_code(&wrong_nonce).as_str(), field(&wrong_nonce)), ("BAD_USER_INPUT", "idToken"));
    let github_takes_no_id_token = with_id_token(&app, "GITHUB", &good).await;
    assert_eq!(field(&github_takes_no_id_token), "provider", "{github_takes_no_id_token}");
}

#[tokio::test]
async fn github_signs_in_with_its_primary_verified_address_by_code_and_by_access_token() {
    let (providers, app) = setup(&[]).await;
    let octo = Person::new("4242", "octo@example.com");
    let (code, state) = redirect_flow(&app, &providers, "GITHUB", &octo).await;
    let (_, user) = signed_in(&with_code(&app, "GITHUB", &code, &state).await);
    assert_eq!((user["email"].as_str(), user["emailVerified"].as_bool()), (Some("octo@example.com"), Some(true)));

    let token = providers.access_token("github", GITHUB_CLIENT_ID, &octo);
    let (_, again) = signed_in(&with_access_token(&app, "GITHUB", &token).await);
    assert_eq!(again["id"], user["id"]);

    let foreign = providers.access_token("github", "another-app", &octo);
    let refused = with_access_token(&app, "GITHUB", &foreign).await;
    assert_eq!((error_code(&refused).as_str(), field(&refused)), ("BAD_USER_INPUT", "accessToken"), "{refused}");

    // GitHub's primary address that GitHub has not verified does not count.
    let unverified = Person::new("4343", "new@example.com").unverified();
    let token = providers.access_token("github", GITHUB_CLIENT_ID, &unverified);
    let no_address = with_access_token(&app, "GITHUB", &token).await;
    assert_eq!((error_code(&no_address).as_str(), field(&no_address)), ("BAD_USER_INPUT", "email"), "{no_address}");
}

#[tokio::test]
async fn facebook_tokens_must_be_our_apps_and_its_address_counts_only_when_configured() {
    let (providers, app) = setup(&[]).await;
    let zuck = Person::new("fb-1", "mark@example.com");
    let token = providers.access_token("facebook", FACEBOOK_APP_ID, &zuck);
    let untrusted = with_access_token(&app, "FACEBOOK", &token).await;
    assert_eq!((error_code(&untrusted).as_str(), field(&untrusted)), ("BAD_USER_INPUT", "email"), "{untrusted}");
    let foreign = providers.access_token("facebook", "another-app", &zuck);
    let refused = with_access_token(&app, "FACEBOOK", &foreign).await;
    assert_eq!((error_code(&refused).as_str(), field(&refused)), ("BAD_USER_INPUT", "accessToken"), "{refused}");

    let (providers, app) = setup(&[("facebook_email_verified", json!(true))]).await;
    let token = providers.access_token("facebook", FACEBOOK_APP_ID, &zuck);
    let (_, user) = signed_in(&with_access_token(&app, "FACEBOOK", &token).await);
    assert_eq!((user["email"].as_str(), user["emailVerified"].as_bool()), (Some("mark@example.com"), Some(true)));
    let (code, state) = redirect_flow(&app, &providers, "FACEBOOK", &zuck).await;
    let (_, again) = signed_in(&with_code(&app, "FACEBOOK", &code, &state).await);
    assert_eq!(again["id"], user["id"]);
}

#[tokio::test]
async fn a_verified_address_of_an_existing_account_links_only_after_the_mailed_code() {
    let (providers, app) = setup(&[]).await;
    app.register_verified("bob@example.com", PASSWORD).await;
    let bob = Person::new("g-bob", "bob@example.com");
    let answer = with_id_token(&app, "GOOGLE", &providers.id_token(Idp::Google, &bob, |_| {})).await;
    let challenge = &answer["data"]["socialAuth"];
    assert_eq!(
        (challenge["__typename"].as_str(), challenge["channel"].as_str()),
        (Some("OtpChallenge"), Some("EMAIL"))
    );

    // Nothing is linked yet: a second try is a challenge again, not a session.
    let again = with_id_token(&app, "GOOGLE", &providers.id_token(Idp::Google, &bob, |_| {})).await;
    assert_eq!(again["data"]["socialAuth"]["__typename"], "OtpChallenge", "{again}");
    let challenge_id = again["data"]["socialAuth"]["challengeId"].as_str().unwrap_or_default().to_owned();

    let code = app.last_code_for("bob@example.com");
    let verified = app.verify_otp(&challenge_id, &code).await;
    let session = tokens(&verified["data"]["verifyOtp"]);
    let me = app.gql_as(&session.access, ME, json!({})).await;
    assert_eq!(me["data"]["me"]["email"], "bob@example.com", "{me}");
    let mine = app.gql_as(&session.access, MINE, json!({})).await;
    assert_eq!(mine["data"]["mySocialAccounts"][0]["provider"], "GOOGLE", "{mine}");

    // Linked: the next sign-in is direct, and the password still works.
    let (_, user) = signed_in(&with_id_token(&app, "GOOGLE", &providers.id_token(Idp::Google, &bob, |_| {})).await);
    assert_eq!(user["id"], me["data"]["me"]["id"]);
    let (challenge, code) = app.login_challenge("bob@example.com").await;
    assert!(app.verify_otp(&challenge, &code).await["errors"].is_null());
}

#[tokio::test]
async fn an_unverified_provider_address_never_links_to_or_blocks_an_account() {
    let (providers, app) = setup(&[("social_require_email", json!(false))]).await;
    let registered = app.register_verified("carol@example.com", PASSWORD).await;
    let carol_id = registered["data"]["register"]["user"]["id"].clone();
    let impostor = Person::new("g-imp", "carol@example.com").unverified();
    let answer = with_id_token(&app, "GOOGLE", &providers.id_token(Idp::Google, &impostor, |_| {})).await;
    let (session, user) = signed_in(&answer);
    assert_ne!(user["id"], carol_id, "an unverified address must not reach Carol's account");
    assert_eq!(user["email"], Value::Null, "an unverified address is not kept: {answer}");
    let mine = app.gql_as(&session.access, MINE, json!({})).await;
    assert_eq!(mine["data"]["mySocialAccounts"], json!([{ "provider": "GOOGLE", "email": null }]));
    let nobody = Person::new("g-none", "x@example.com").without_email();
    let (_, bare) = signed_in(&with_id_token(&app, "GOOGLE", &providers.id_token(Idp::Google, &nobody, |_| {})).await);
    assert_eq!(bare["email"], Value::Null);

    let (providers, app) = setup(&[]).await;
    let refused = with_id_token(&app, "GOOGLE", &providers.id_token(Idp::Google, &impostor, |_| {})).await;
    assert_eq!((error_code(&refused).as_str(), field(&refused)), ("BAD_USER_INPUT", "email"), "{refused}");
}

/// Account pre-hijacking: the attacker registers the victim's address with a password and keeps
/// a session, waiting for the victim to sign in with Google.
#[tokio::test]
async fn a_pre_registered_account_goes_to_whoever_proves_the_address_and_the_registrant_loses_it() {
    let (providers, app) = setup(&[("require_email_verification", json!(false))]).await;
    let root = app.superuser("root@example.com").await;
    app.register("victim@example.com", PASSWORD).await;
    let attacker = app.log_in("victim@example.com").await;
    assert!(app.me(&attacker.access).await["errors"].is_null());
    let mails_before = app.mails_to("victim@example.com").len();

    let victim = Person::new("g-victim", "victim@example.com");
    let answer = with_id_token(&app, "GOOGLE", &providers.id_token(Idp::Google, &victim, |_| {})).await;
    assert_eq!(answer["data"]["socialAuth"]["__typename"], "OtpChallenge", "never linked silently: {answer}");
    let challenge = answer["data"]["socialAuth"]["challengeId"].as_str().unwrap_or_default().to_owned();
    let verified = app.verify_otp(&challenge, &app.last_code_for("victim@example.com")).await;
    let owner = tokens(&verified["data"]["verifyOtp"]);
    let me = app.gql_as(&owner.access, ME, json!({})).await;
    assert_eq!(me["data"]["me"]["emailVerified"], true, "{me}");

    assert_eq!(error_code(&app.me(&attacker.access).await), "UNAUTHENTICATED", "the attacker's session ended");
    assert_eq!(error_code(&app.refresh(&attacker.refresh).await), "UNAUTHENTICATED");
    let login = app.login("victim@example.com", PASSWORD).await;
    assert_eq!(error_code(&login), "INVALID_CREDENTIALS", "the attacker's password is gone: {login}");

    let mails = app.wait_for_mails("victim@example.com", mails_before + 2).await;
    assert!(mails.iter().any(|m| m.contains("now yours")), "the owner is told: {mails:?}");
    let kinds = audit_kinds(&app, &root).await;
    assert!(kinds.iter().any(|k| k == "ACCOUNT_CLAIMED"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "SOCIAL_ACCOUNT_LINKED"), "{kinds:?}");
}

#[tokio::test]
async fn linking_and_unlinking_keep_one_owner_per_identity_and_a_way_to_sign_in() {
    let (providers, app) = setup(&[]).await;
    let bob = app.signed_in("bob@example.com").await;
    let alice = app.signed_in("alice@example.com").await;
    let octo = Person::new("77", "octo@example.com");

    let token = providers.access_token("github", GITHUB_CLIENT_ID, &octo);
    let linked =
        app.gql_as(&bob.access, LINK, json!({ "input": { "provider": "github", "accessToken": token } })).await;
    assert_eq!(linked["data"]["linkSocialAccount"]["provider"], "GITHUB", "{linked}");
    let taken =
        app.gql_as(&alice.access, LINK, json!({ "input": { "provider": "GITHUB", "accessToken": token } })).await;
    assert_eq!(error_code(&taken), "CONFLICT", "{taken}");
    let (_, as_bob) = signed_in(&with_access_token(&app, "GITHUB", &token).await);
    assert_eq!(as_bob["email"], "bob@example.com");

    // A linking flow started by Bob cannot be finished by Alice.
    let started = app
        .gql_as(&bob.access, START, json!({ "input": { "provider": "GOOGLE", "redirectUri": OTHER_CALLBACK } }))
        .await;
    let url = started["data"]["socialAuthStart"]["authorizationUrl"].as_str().unwrap_or_default();
    let back = providers.consent(url, &Person::new("g-bob", "bob@example.com"));
    let input = json!({ "input": { "provider": "GOOGLE", "code": back.code, "state": back.state, "redirectUri": OTHER_CALLBACK } });
    let stolen = app.gql_as(&alice.access, LINK, input.clone()).await;
    assert_eq!((error_code(&stolen).as_str(), field(&stolen)), ("BAD_USER_INPUT", "state"), "{stolen}");

    let unlinked = app.gql_as(&bob.access, UNLINK, json!({ "provider": "github" })).await;
    assert_eq!(unlinked["data"]["unlinkSocialAccount"], true, "Bob keeps his password: {unlinked}");
    let gone = app.gql_as(&bob.access, UNLINK, json!({ "provider": "GITHUB" })).await;
    assert_eq!(error_code(&gone), "NOT_FOUND");

    // An account made by a provider has no password: its only provider cannot go...
    let (social, _) = signed_in(&with_id_token(&app, "GOOGLE", &providers.id_token(Idp::Google, &octo, |_| {})).await);
    let last = app.gql_as(&social.access, UNLINK, json!({ "provider": "GOOGLE" })).await;
    assert_eq!(error_code(&last), "CONFLICT", "{last}");
    // ...until another one is linked.
    let token = providers.access_token("github", GITHUB_CLIENT_ID, &octo);
    let linked =
        app.gql_as(&social.access, LINK, json!({ "input": { "provider": "GITHUB", "accessToken": token } })).await;
    assert!(linked["errors"].is_null(), "{linked}");
    let unlinked = app.gql_as(&social.access, UNLINK, json!({ "provider": "GOOGLE" })).await;
    assert_eq!(unlinked["data"]["unlinkSocialAccount"], true, "{unlinked}");
    let mine = app.gql_as(&social.access, MINE, json!({})).await;
    assert_eq!(mine["data"]["mySocialAccounts"], json!([{ "provider": "GITHUB", "email": "octo@example.com" }]));
}

#[tokio::test]
async fn a_deactivated_account_cannot_sign_in_with_a_provider_and_outcomes_are_audited() {
    let (providers, app) = setup(&[]).await;
    let root = app.superuser("root@example.com").await;
    let dora = Person::new("g-dora", "dora@example.com");
    let (_, user) = signed_in(&with_id_token(&app, "GOOGLE", &providers.id_token(Idp::Google, &dora, |_| {})).await);
    let off = app
        .gql_as(
            &root.access,
            "mutation($id: ID!) { deactivateUser(id: $id) { user { isActive } } }",
            json!({ "id": user["id"] }),
        )
        .await;
    assert_eq!(off["data"]["deactivateUser"]["user"]["isActive"], false, "{off}");
    let refused = with_id_token(&app, "GOOGLE", &providers.id_token(Idp::Google, &dora, |_| {})).await;
    assert_eq!(error_code(&refused), "ACCOUNT_INACTIVE", "{refused}");

    let forged = with_id_token(&app, "GOOGLE", &providers.forged_id_token(Idp::Google, &dora)).await;
    assert_eq!(error_code(&forged), "BAD_USER_INPUT");

    let trail = app
        .gql_as(
            &root.access,
            "{ auditEvents(first: 100, filter: { kind: LOGIN_FAILED }) { edges { node { detail } } } }",
            json!({}),
        )
        .await;
    let reasons: Vec<&str> = trail["data"]["auditEvents"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{trail}"))
        .iter()
        .filter(|e| e["node"]["detail"]["method"] == "social")
        .filter_map(|e| e["node"]["detail"]["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"inactive") && reasons.contains(&"invalid_idToken"), "{trail}");
    let kinds = audit_kinds(&app, &root).await;
    for kind in ["REGISTERED", "SOCIAL_ACCOUNT_LINKED", "LOGIN_SUCCEEDED"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn with_social_login_otp_a_provider_sign_in_is_followed_by_the_mailed_code() {
    let (providers, app) = setup(&[("social_login_otp", json!(true))]).await;
    let eve = Person::new("g-eve", "eve@example.com");
    for _ in 0..2 {
        let answer = with_id_token(&app, "GOOGLE", &providers.id_token(Idp::Google, &eve, |_| {})).await;
        let challenge = &answer["data"]["socialAuth"];
        assert_eq!(challenge["__typename"], "OtpChallenge", "new and returning alike: {answer}");
        let id = challenge["challengeId"].as_str().unwrap_or_default();
        let verified = app.verify_otp(id, &app.last_code_for("eve@example.com")).await;
        assert_eq!(verified["data"]["verifyOtp"]["user"]["email"], "eve@example.com", "{verified}");
    }
    let (providers, app) = setup(&[("social_login_otp", json!(true)), ("login_otp", json!("off"))]).await;
    let answer = with_id_token(&app, "GOOGLE", &providers.id_token(Idp::Google, &eve, |_| {})).await;
    signed_in(&answer);
}

#[tokio::test]
async fn a_provider_that_is_down_slow_or_talks_nonsense_is_a_provider_error_and_creates_nothing() {
    let (providers, app) = setup(&[]).await;
    let root = app.superuser("root@example.com").await;
    let octo = Person::new("99", "octo@example.com");
    let token = providers.access_token("github", GITHUB_CLIENT_ID, &octo);
    for behaviour in [Behaviour::Down, Behaviour::Garbage, Behaviour::Slow(Duration::from_secs(3))] {
        providers.behave(behaviour);
        let failed = with_access_token(&app, "GITHUB", &token).await;
        assert_eq!(error_code(&failed), "PROVIDER_ERROR", "{behaviour:?}: {failed}");
        assert_eq!(failed["errors"][0]["extensions"]["provider"], "GITHUB");
        assert!(failed["data"].is_null() || failed["data"]["socialAuth"].is_null());
        let start = app.gql(START, json!({ "input": { "provider": "GOOGLE", "redirectUri": CALLBACK } })).await;
        assert_eq!(error_code(&start), "PROVIDER_ERROR", "{behaviour:?}: {start}");
    }
    let count = "{ users(first: 10) { totalCount } }";
    let before = app.gql_as(&root.access, count, json!({})).await["data"]["users"]["totalCount"].clone();
    assert_eq!(before, 1, "only root: no account was half-made");

    providers.behave(Behaviour::Normal);
    let (_, user) = signed_in(&with_access_token(&app, "GITHUB", &token).await);
    assert_eq!(user["email"], "octo@example.com");
}

#[tokio::test]
async fn malformed_proofs_are_bad_input_before_any_provider_is_asked() {
    let (providers, app) = setup(&[]).await;
    let cases = [
        (json!({ "provider": "GOOGLE" }), "code"),
        (json!({ "provider": "GOOGLE", "code": "c", "state": "s" }), "code"),
        (json!({ "provider": "GOOGLE", "idToken": "a", "accessToken": "b" }), "code"),
        (json!({ "provider": "G".repeat(10_000), "idToken": "a" }), "provider"),
        (json!({ "provider": "MYSPACE", "accessToken": "a" }), "provider"),
        (json!({ "provider": "GOOGLE", "idToken": "x".repeat(20_000) }), "idToken"),
        (json!({ "provider": "GITHUB", "accessToken": "x".repeat(5_000) }), "accessToken"),
        (json!({ "provider": "GITHUB", "code": "c", "state": "../../etc", "redirectUri": CALLBACK }), "state"),
        (json!({ "provider": "GOOGLE", "idToken": "a", "deviceName": "\u{0}".repeat(3) }), "deviceName"),
    ];
    for (input, expected) in cases {
        let refused = app.gql(SOCIAL_AUTH, json!({ "input": input })).await;
        assert_eq!((error_code(&refused).as_str(), field(&refused)), ("BAD_USER_INPUT", expected), "{refused}");
    }
    assert!(providers.calls().is_empty(), "{:?}", providers.calls());
}
