//! Fake identity providers on 127.0.0.1, one server per test: Google and a generic OpenID Connect
//! provider ("Keycloak") with discovery, JWKS, token and userinfo endpoints; GitHub's OAuth web
//! flow and REST API (user, emails, token check); Facebook's dialog and Graph API (token exchange,
//! `debug_token`, `/me`). Nobody opens the authorize pages: [`Providers::consent`] plays the person
//! who consents and hands back the code the browser would carry to the redirect URI. Codes are
//! single-use and bound to the client, redirect URI and PKCE challenge, so a sloppy client fails
//! here as it would against the real providers. [`Providers::behave`] makes every endpoint go down,
//! answer garbage, or answer slowly.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, RawQuery, Request, State},
    http::{
        HeaderMap, StatusCode,
        header::{AUTHORIZATION, CONTENT_TYPE},
    },
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::{
    RsaPrivateKey,
    pkcs8::{EncodePrivateKey, LineEnding},
    traits::PublicKeyParts,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::{net::TcpListener, task::JoinHandle};

pub const GOOGLE_CLIENT_ID: &str = "google-client-id";
pub const GOOGLE_CLIENT_SECRET: &str = "google-client-secret";
pub const KEYCLOAK_CLIENT_ID: &str = "keycloak-client-id";
pub const KEYCLOAK_CLIENT_SECRET: &str = "keycloak-client-secret";
pub const GITHUB_CLIENT_ID: &str = "github-client-id";
pub const GITHUB_CLIENT_SECRET: &str = "github-client-secret";
pub const FACEBOOK_APP_ID: &str = "facebook-app-id";
pub const FACEBOOK_APP_SECRET: &str = "facebook-app-secret";

const KID: &str = "provider-key-1";

/// Someone with an account at the providers.
#[derive(Clone, Debug)]
pub struct Person {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub first_name: String,
    pub last_name: String,
}

impl Person {
    /// Ada Lovelace with a verified email.
    pub fn new(subject: &str, email: &str) -> Person {
        Person {
            subject: subject.to_owned(),
            email: Some(email.to_owned()),
            email_verified: true,
            first_name: "Ada".to_owned(),
            last_name: "Lovelace".to_owned(),
        }
    }

    pub fn unverified(self) -> Person {
        Person { email_verified: false, ..self }
    }

    pub fn without_email(self) -> Person {
        Person { email: None, email_verified: false, ..self }
    }
}

/// The two OpenID Connect issuers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idp {
    Google,
    Keycloak,
}

impl Idp {
    fn prefix(self) -> &'static str {
        match self {
            Idp::Google => "google",
            Idp::Keycloak => "keycloak",
        }
    }
}

/// How every endpoint answers from now on.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    Normal,
    /// 503 with a JSON error.
    Down,
    /// 200 with an HTML body, as a captive portal or a misrouted proxy would.
    Garbage,
    /// Sleeps this long, then answers normally.
    Slow(Duration),
}

/// Where the browser was sent back to after consenting.
#[derive(Clone, Debug)]
pub struct Redirect {
    pub code: String,
    pub state: String,
    pub redirect_uri: String,
}

/// A running server; stops when dropped.
pub struct Providers {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    mock: Mock,
    task: JoinHandle<()>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Provider {
    Google,
    Keycloak,
    GitHub,
    Facebook,
}

impl Provider {
    fn named(name: &str) -> Provider {
        match name {
            "google" => Provider::Google,
            "keycloak" => Provider::Keycloak,
            "github" => Provider::GitHub,
            "facebook" => Provider::Facebook,
            _ => panic!("unknown provider {name:?}: use google, keycloak, github or facebook"),
        }
    }

    /// The one app registered with this provider: (client id, secret).
    fn client(self) -> (&'static str, &'static str) {
        match self {
            Provider::Google => (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET),
            Provider::Keycloak => (KEYCLOAK_CLIENT_ID, KEYCLOAK_CLIENT_SECRET),
            Provider::GitHub => (GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET),
            Provider::Facebook => (FACEBOOK_APP_ID, FACEBOOK_APP_SECRET),
        }
    }
}

impl From<Idp> for Provider {
    fn from(idp: Idp) -> Provider {
        match idp {
            Idp::Google => Provider::Google,
            Idp::Keycloak => Provider::Keycloak,
        }
    }
}

/// What a consent produced, waiting for the client to redeem its code.
struct Grant {
    provider: Provider,
    person: Person,
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
}

/// Whom an access token speaks for, and which app holds it.
#[derive(Clone)]
struct Issued {
    provider: Provider,
    client_id: String,
    person: Person,
}

struct Shared {
    behaviour: Behaviour,
    calls: Vec<String>,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, Issued>,
}

#[derive(Clone)]
struct Mock {
    base: String,
    shared: Arc<Mutex<Shared>>,
}

impl Mock {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn issuer(&self, idp: Idp) -> String {
        format!("{}/{}", self.base, idp.prefix())
    }

    fn issue(&self, provider: Provider, client_id: &str, person: &Person) -> String {
        let token = random_token();
        let issued = Issued { provider, client_id: client_id.to_owned(), person: person.clone() };
        self.lock().tokens.insert(token.clone(), issued);
        token
    }

    fn holder(&self, provider: Provider, token: &str) -> Option<Issued> {
        self.lock().tokens.get(token).filter(|issued| issued.provider == provider).cloned()
    }

    /// The token endpoint's checks, shared by every provider. The code is burned even when a later
    /// check fails, as real servers do, so a retry with the right verifier cannot succeed.
    fn redeem(
        &self,
        provider: Provider,
        headers: &HeaderMap,
        form: &HashMap<String, String>,
    ) -> Result<Grant, Rejected> {
        let (client_id, secret) = basic_auth(headers)
            .or_else(|| Some((form.get("client_id")?.clone(), form.get("client_secret")?.clone())))
            .ok_or(Rejected::Client)?;
        if (client_id.as_str(), secret.as_str()) != provider.client() {
            return Err(Rejected::Client);
        }
        if form.get("grant_type").is_some_and(|grant_type| grant_type != "authorization_code") {
            return Err(Rejected::Grant);
        }
        let code = form.get("code").ok_or(Rejected::Grant)?;
        let grant = self.lock().codes.remove(code).ok_or(Rejected::Grant)?;
        let verifier = form.get("code_verifier").ok_or(Rejected::Grant)?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let bound = grant.provider == provider
            && grant.client_id == client_id
            && form.get("redirect_uri") == Some(&grant.redirect_uri)
            && challenge == grant.code_challenge;
        if bound { Ok(grant) } else { Err(Rejected::Grant) }
    }
}

enum Rejected {
    Client,
    Grant,
}

impl Rejected {
    fn oauth(self) -> Response {
        match self {
            Rejected::Client => reply(StatusCode::UNAUTHORIZED, json!({ "error": "invalid_client" })),
            Rejected::Grant => reply(StatusCode::BAD_REQUEST, json!({ "error": "invalid_grant" })),
        }
    }
}

impl Providers {
    pub async fn start() -> Providers {
        // Key generation takes a while the first time; keep it off the test's runtime thread.
        tokio::task::spawn_blocking(keys).await.unwrap_or_else(|e| panic!("provider keys: {e}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("providers bind: {e}"));
        let port = listener.local_addr().unwrap_or_else(|e| panic!("providers address: {e}")).port();
        let shared =
            Shared { behaviour: Behaviour::Normal, calls: Vec::new(), codes: HashMap::new(), tokens: HashMap::new() };
        let mock = Mock { base: format!("http://127.0.0.1:{port}"), shared: Arc::new(Mutex::new(shared)) };
        let mut router = Router::new();
        for idp in [Idp::Google, Idp::Keycloak] {
            let prefix = idp.prefix();
            router =
                router
                    .route(
                        &format!("/{prefix}/.well-known/openid-configuration"),
                        get(move |State(mock): State<Mock>| async move { discovery(&mock, idp) }),
                    )
                    .route(&format!("/{prefix}/jwks"), get(jwks))
                    .route(
                        &format!("/{prefix}/token"),
                        post(move |State(mock): State<Mock>, headers: HeaderMap, body: String| async move {
                            oidc_token(&mock, idp, &headers, &body)
                        }),
                    )
                    .route(
                        &format!("/{prefix}/userinfo"),
                        get(move |State(mock): State<Mock>, headers: HeaderMap| async move {
                            userinfo(&mock, idp, &headers)
                        }),
                    );
        }
        let router = router
            .route("/github/login/oauth/access_token", post(github_token))
            .route("/github-api/user", get(github_user))
            .route("/github-api/user/emails", get(github_emails))
            .route("/github-api/applications/{client_id}/token", post(github_check_token))
            .route("/facebook-graph/oauth/access_token", get(facebook_token).post(facebook_token))
            .route("/facebook-graph/debug_token", get(facebook_debug_token))
            .route("/facebook-graph/me", get(facebook_me))
            .fallback(|| async { reply(StatusCode::NOT_FOUND, json!({ "message": "Not Found" })) })
            .layer(from_fn_with_state(mock.clone(), misbehave))
            .with_state(mock.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Providers { base: mock.base.clone(), mock, task }
    }

    pub fn behave(&self, behaviour: Behaviour) {
        self.mock.lock().behaviour = behaviour;
    }

    pub fn issuer(&self, idp: Idp) -> String {
        self.mock.issuer(idp)
    }

    pub fn github_url(&self) -> String {
        format!("{}/github", self.base)
    }

    pub fn github_api_url(&self) -> String {
        format!("{}/github-api", self.base)
    }

    pub fn facebook_url(&self) -> String {
        format!("{}/facebook", self.base)
    }

    pub fn facebook_graph_url(&self) -> String {
        format!("{}/facebook-graph", self.base)
    }

    /// Plays the person consenting on the provider's authorize page: checks the authorization
    /// request as the provider would, and returns what the browser carries back to the client.
    pub fn consent(&self, authorization_url: &str, person: &Person) -> Redirect {
        let url = url::Url::parse(authorization_url)
            .unwrap_or_else(|e| panic!("consent: {authorization_url:?} is not a URL: {e}"));
        let provider = match url.path() {
            _ if url.origin().ascii_serialization() != self.base => None,
            "/google/authorize" => Some(Provider::Google),
            "/keycloak/authorize" => Some(Provider::Keycloak),
            "/github/login/oauth/authorize" => Some(Provider::GitHub),
            "/facebook/dialog/oauth" => Some(Provider::Facebook),
            _ => None,
        }
        .unwrap_or_else(|| {
            panic!(
                "consent: {authorization_url} is not one of this server's authorize endpoints \
                 ({0}/google/authorize, {0}/keycloak/authorize, {0}/github/login/oauth/authorize, \
                 {0}/facebook/dialog/oauth)",
                self.base
            )
        });
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        let param = |name: &str| {
            query.get(name).cloned().unwrap_or_else(|| panic!("consent: no {name} in {authorization_url}"))
        };
        assert_eq!(param("response_type"), "code", "consent: response_type in {authorization_url}");
        let client_id = param("client_id");
        assert_eq!(client_id, provider.client().0, "consent: client_id in {authorization_url}");
        assert_eq!(param("code_challenge_method"), "S256", "consent: code_challenge_method in {authorization_url}");
        let redirect_uri = param("redirect_uri");
        let grant = Grant {
            provider,
            person: person.clone(),
            client_id,
            redirect_uri: redirect_uri.clone(),
            code_challenge: param("code_challenge"),
            nonce: query.get("nonce").cloned(),
        };
        let code = random_token();
        self.mock.lock().codes.insert(code.clone(), grant);
        Redirect { code, state: param("state"), redirect_uri }
    }

    /// An ID token as the IdP's SDK would hand to a mobile app; `edit` changes the claims before
    /// signing.
    pub fn id_token(&self, idp: Idp, person: &Person, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = id_claims(&self.issuer(idp), idp, person);
        edit(&mut claims);
        sign(&claims, &keys().published)
    }

    /// The same claims, signed with a key the provider never published, under the published kid.
    pub fn forged_id_token(&self, idp: Idp, person: &Person) -> String {
        sign(&id_claims(&self.issuer(idp), idp, person), &keys().foreign)
    }

    /// An access token for `provider` ("github" or "facebook"; "google" and "keycloak" work too)
    /// issued to app `client_id`, as the provider's SDK gives an app.
    pub fn access_token(&self, provider: &str, client_id: &str, person: &Person) -> String {
        self.mock.issue(Provider::named(provider), client_id, person)
    }

    /// Paths requested so far, oldest first.
    pub fn calls(&self) -> Vec<String> {
        self.mock.lock().calls.clone()
    }
}

impl Drop for Providers {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Keys {
    published: EncodingKey,
    foreign: EncodingKey,
    /// The published key's modulus and exponent, base64url as JWKS wants them.
    n: String,
    e: String,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let published = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap_or_else(|e| panic!("RSA key: {e}"));
        let foreign = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap_or_else(|e| panic!("RSA key: {e}"));
        let encoding = |key: &RsaPrivateKey| {
            let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap_or_else(|e| panic!("RSA key PEM: {e}"));
            EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap_or_else(|e| panic!("RSA encoding key: {e}"))
        };
        Keys {
            n: URL_SAFE_NO_PAD.encode(published.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(published.e().to_bytes_be()),
            published: encoding(&published),
            foreign: encoding(&foreign),
        }
    })
}

fn sign(claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap_or_else(|e| panic!("signing an ID token: {e}"))
}

/// The person as OpenID Connect's standard claims, without the email ones when there is no email.
fn profile(person: &Person) -> Value {
    let mut profile = json!({
        "sub": person.subject,
        "given_name": person.first_name,
        "family_name": person.last_name,
    });
    if let Some(email) = &person.email {
        profile["email"] = json!(email);
        profile["email_verified"] = json!(person.email_verified);
    }
    profile
}

fn id_claims(issuer: &str, idp: Idp, person: &Person) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims = profile(person);
    claims["iss"] = json!(issuer);
    claims["aud"] = json!(Provider::from(idp).client().0);
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 600);
    claims
}

fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// Form fields from a body or a query string.
fn fields(text: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(text.as_bytes()).into_owned().collect()
}

/// HTTP Basic client credentials, each half form-urlencoded as RFC 6749 §2.3.1 says.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |part: &str| url::form_urlencoded::parse(part.as_bytes()).next().map(|(key, _)| key.into_owned());
    Some((unescape(id).unwrap_or_default(), unescape(secret).unwrap_or_default()))
}

/// The token in `Authorization: Bearer X`, or GitHub's older `token X`.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let known = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token");
    known.then(|| token.trim().to_owned())
}

/// Records the request, then answers as the test asked.
async fn misbehave(State(mock): State<Mock>, request: Request, next: Next) -> Response {
    let behaviour = {
        let mut shared = mock.lock();
        shared.calls.push(request.uri().path().to_owned());
        shared.behaviour
    };
    match behaviour {
        Behaviour::Normal => next.run(request).await,
        Behaviour::Down => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": "temporarily_unavailable", "error_description": "the provider is down" }),
        ),
        Behaviour::Garbage => (StatusCode::OK, [(CONTENT_TYPE, "text/html")], "<html>oops</html>").into_response(),
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
    }
}

fn discovery(mock: &Mock, idp: Idp) -> Json<Value> {
    let issuer = mock.issuer(idp);
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks() -> Json<Value> {
    let keys = keys();
    Json(json!({ "keys": [{ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID, "n": keys.n, "e": keys.e }] }))
}

fn oidc_token(mock: &Mock, idp: Idp, headers: &HeaderMap, body: &str) -> Response {
    let form = fields(body);
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return Rejected::Grant.oauth();
    }
    let grant = match mock.redeem(idp.into(), headers, &form) {
        Ok(grant) => grant,
        Err(rejected) => return rejected.oauth(),
    };
    let mut claims = id_claims(&mock.issuer(idp), idp, &grant.person);
    if let Some(nonce) = grant.nonce {
        claims["nonce"] = json!(nonce);
    }
    let access_token = mock.issue(grant.provider, &grant.client_id, &grant.person);
    reply(
        StatusCode::OK,
        json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "openid email profile",
            "id_token": sign(&claims, &keys().published),
        }),
    )
}

fn userinfo(mock: &Mock, idp: Idp, headers: &HeaderMap) -> Response {
    match bearer(headers).and_then(|token| mock.holder(idp.into(), &token)) {
        Some(issued) => reply(StatusCode::OK, profile(&issued.person)),
        None => reply(StatusCode::UNAUTHORIZED, json!({ "error": "invalid_token" })),
    }
}

/// GitHub's numeric user id: the subject when it is a number, otherwise a stable one below 2^48
/// so it survives JavaScript-style number handling.
fn github_id(person: &Person) -> u64 {
    person.subject.parse().unwrap_or_else(|_| {
        Sha256::digest(person.subject.as_bytes())[..6].iter().fold(0, |id, byte| id << 8 | u64::from(*byte))
    })
}

fn github_login(person: &Person) -> String {
    person.first_name.to_lowercase()
}

fn bad_credentials() -> Response {
    reply(StatusCode::UNAUTHORIZED, json!({ "message": "Bad credentials" }))
}

async fn github_token(State(mock): State<Mock>, headers: HeaderMap, body: String) -> Response {
    match mock.redeem(Provider::GitHub, &headers, &fields(&body)) {
        Ok(grant) => {
            let access_token = mock.issue(grant.provider, &grant.client_id, &grant.person);
            reply(
                StatusCode::OK,
                json!({ "access_token": access_token, "token_type": "bearer", "scope": "read:user,user:email" }),
            )
        }
        Err(rejected) => rejected.oauth(),
    }
}

async fn github_user(State(mock): State<Mock>, headers: HeaderMap) -> Response {
    let Some(issued) = bearer(&headers).and_then(|token| mock.holder(Provider::GitHub, &token)) else {
        return bad_credentials();
    };
    let person = &issued.person;
    reply(
        StatusCode::OK,
        json!({
            "id": github_id(person),
            "login": github_login(person),
            "name": format!("{} {}", person.first_name, person.last_name),
            "email": null,
        }),
    )
}

async fn github_emails(State(mock): State<Mock>, headers: HeaderMap) -> Response {
    let Some(issued) = bearer(&headers).and_then(|token| mock.holder(Provider::GitHub, &token)) else {
        return bad_credentials();
    };
    let person = &issued.person;
    let emails: Vec<Value> = person
        .email
        .iter()
        .map(|email| json!({ "email": email, "primary": true, "verified": person.email_verified, "visibility": "public" }))
        .collect();
    reply(StatusCode::OK, json!(emails))
}

/// GitHub's "check a token" API: only the app itself, with its secret, may ask, and the answer
/// is 404 unless the token was issued to that app.
async fn github_check_token(
    State(mock): State<Mock>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let app = (GITHUB_CLIENT_ID.to_owned(), GITHUB_CLIENT_SECRET.to_owned());
    if client_id != GITHUB_CLIENT_ID || basic_auth(&headers) != Some(app) {
        return bad_credentials();
    }
    let token =
        serde_json::from_str::<Value>(&body).ok().and_then(|body| body["access_token"].as_str().map(str::to_owned));
    let issued = token.as_deref().and_then(|token| mock.holder(Provider::GitHub, token));
    match issued.filter(|issued| issued.client_id == client_id) {
        Some(issued) => reply(
            StatusCode::OK,
            json!({
                "id": 1,
                "token": token,
                "app": { "client_id": issued.client_id },
                "user": { "id": github_id(&issued.person), "login": github_login(&issued.person) },
            }),
        ),
        None => reply(StatusCode::NOT_FOUND, json!({ "message": "Not Found" })),
    }
}

fn facebook_error(code: u32, message: &str) -> Response {
    reply(StatusCode::BAD_REQUEST, json!({ "error": { "message": message, "type": "OAuthException", "code": code } }))
}

/// Facebook takes the exchange's parameters from the query or a form body alike.
async fn facebook_token(
    State(mock): State<Mock>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut form = fields(query.as_deref().unwrap_or_default());
    form.extend(fields(&body));
    match mock.redeem(Provider::Facebook, &headers, &form) {
        Ok(grant) => {
            let access_token = mock.issue(grant.provider, &grant.client_id, &grant.person);
            reply(
                StatusCode::OK,
                json!({ "access_token": access_token, "token_type": "bearer", "expires_in": 5183944 }),
            )
        }
        Err(Rejected::Client) => facebook_error(100, "Error validating client secret."),
        Err(Rejected::Grant) => facebook_error(100, "Invalid verification code format."),
    }
}

async fn facebook_debug_token(State(mock): State<Mock>, RawQuery(query): RawQuery) -> Response {
    let query = fields(query.as_deref().unwrap_or_default());
    if query.get("access_token") != Some(&format!("{FACEBOOK_APP_ID}|{FACEBOOK_APP_SECRET}")) {
        return facebook_error(190, "Invalid OAuth access token - Cannot parse access token");
    }
    let issued = query.get("input_token").and_then(|token| mock.holder(Provider::Facebook, token));
    let data = match issued {
        Some(issued) => json!({
            "app_id": issued.client_id,
            "type": "USER",
            "is_valid": true,
            "user_id": issued.person.subject,
            "expires_at": chrono::Utc::now().timestamp() + 3600,
        }),
        None => json!({
            "is_valid": false,
            "error": { "code": 190, "message": "Invalid OAuth access token.", "subcode": 0 },
        }),
    };
    reply(StatusCode::OK, json!({ "data": data }))
}

/// `/me` answers only the fields asked for, as the Graph API does, or all of them when none are.
async fn facebook_me(State(mock): State<Mock>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let query = fields(query.as_deref().unwrap_or_default());
    let token = query.get("access_token").cloned().or_else(|| bearer(&headers));
    let Some(issued) = token.and_then(|token| mock.holder(Provider::Facebook, &token)) else {
        return facebook_error(190, "Invalid OAuth access token.");
    };
    let person = issued.person;
    let mut me = json!({ "id": person.subject, "first_name": person.first_name, "last_name": person.last_name });
    if let Some(email) = person.email {
        me["email"] = json!(email);
    }
    if let (Some(asked), Some(all)) = (query.get("fields"), me.as_object_mut()) {
        let asked: Vec<&str> = asked.split(',').map(str::trim).collect();
        all.retain(|field, _| field == "id" || asked.contains(&field.as_str()));
    }
    reply(StatusCode::OK, me)
}
