//! The test harness: each TestApp is the real application on 127.0.0.1:0 with its own fresh
//! database (an SQLite file, or a new PostgreSQL database when IDGATE_TEST_DATABASE_URL is
//! set), its own KV (memory, or a Redis key prefix when IDGATE_TEST_REDIS_URL is set), an
//! outbox directory to read mail from, and a manual clock.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use chrono::Utc;
use figment::{Figment, providers::Serialized};
use idgate::{app::App, clock::ManualClock, config::Settings};
use sea_orm::{ConnectionTrait, Database};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tempfile::TempDir;

/// One RSA key for the whole test binary: generating one per test would dominate run time.
/// (One test covers generation at first start.)
fn shared_signing_key() -> SecretString {
    static KEY: OnceLock<SecretString> = OnceLock::new();
    KEY.get_or_init(|| idgate::auth::keys::generate_rsa_pem().unwrap_or_else(|e| panic!("keygen: {e:?}"))).clone()
}

/// Re-signs `token` with the test signing key after `edit` changed its header and claims: a
/// token only the holder of idgate's key could make.
pub fn re_signed(token: &str, edit: impl FnOnce(&mut jsonwebtoken::Header, &mut Value)) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let mut header = jsonwebtoken::decode_header(token).unwrap_or_else(|e| panic!("{e}"));
    let payload = token.split('.').nth(1).unwrap_or_default();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    edit(&mut header, &mut claims);
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(shared_signing_key().expose_secret().as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    jsonwebtoken::encode(&header, &claims, &key).unwrap_or_else(|e| panic!("{e}"))
}

pub const PASSWORD: &str = "correct horse battery staple 93";

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub outbox: PathBuf,
    dir: Arc<TempDir>,
    /// Everything needed to start this app again on the same state.
    launch: Launch,
    /// Dropping it (or sending) stops the server gracefully.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// How an app was started, kept for a restart.
#[derive(Clone)]
struct Launch {
    pairs: Vec<(String, Value)>,
    shared_key: bool,
    redis_prefix: Option<String>,
}

/// Tokens from a completed login.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub session_id: String,
}

/// A fresh database URL: an SQLite file in `dir`, or a new PostgreSQL database.
pub async fn fresh_database(dir: &Path) -> String {
    match std::env::var("IDGATE_TEST_DATABASE_URL") {
        Ok(base) => {
            let name = format!("idgate_test_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&base).await.unwrap_or_else(|e| panic!("cannot reach {base}: {e}"));
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap_or_else(|e| panic!("cannot create {name}: {e}"));
            let (server, _) = base.rsplit_once('/').unwrap_or((&base, ""));
            format!("{server}/{name}")
        }
        Err(_) => format!("sqlite://{}?mode=rwc", dir.join("idgate.db").display()),
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Starts an app with settings overridden by `pairs` (setting name, JSON value).
    pub async fn spawn_with(pairs: &[(&str, Value)]) -> Self {
        let dir = Arc::new(TempDir::new().unwrap_or_else(|e| panic!("tempdir: {e}")));
        let database_url = fresh_database(dir.path()).await;
        Self::spawn_on(dir, database_url, pairs, true).await
    }

    /// Starts an app on an existing database directory (a restart).
    pub async fn spawn_on(dir: Arc<TempDir>, database_url: String, pairs: &[(&str, Value)], shared_key: bool) -> Self {
        let launch = Launch {
            pairs: pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
            shared_key,
            redis_prefix: std::env::var("IDGATE_TEST_REDIS_URL")
                .is_ok()
                .then(|| format!("idgate-test:{}:", uuid::Uuid::new_v4().simple())),
        };
        Self::launch(dir, database_url, launch, ManualClock::new(Utc::now())).await
    }

    /// Another instance of this app, as behind one load balancer: the same database, KV (the
    /// same Redis prefix, or the database's own table), outbox, clock and public URL (and so the
    /// tokens' issuer), on its own port.
    pub async fn sibling(&self) -> Self {
        let mut launch = self.launch.clone();
        if !launch.pairs.iter().any(|(key, _)| key == "public_url") {
            launch.pairs.push(("public_url".to_owned(), Value::String(self.address.clone())));
        }
        Self::launch(Arc::clone(&self.dir), self.database_url.clone(), launch, self.clock.clone()).await
    }

    /// Stops this app gracefully (as SIGTERM would) and starts a new one on the same address,
    /// database, KV, outbox and clock: a restart. (The same address keeps the default public
    /// URL, and with it the tokens' issuer, unchanged.)
    pub async fn restart(mut self) -> Self {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let listen = self.address.trim_start_matches("http://").to_owned();
        // Wait until the old server has let go of its port.
        for _ in 0..200 {
            if std::net::TcpListener::bind(&listen).is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let mut launch = self.launch.clone();
        launch.pairs.push(("listen".to_owned(), Value::String(listen)));
        Self::launch(Arc::clone(&self.dir), self.database_url.clone(), launch, self.clock.clone()).await
    }

    async fn launch(dir: Arc<TempDir>, database_url: String, launch: Launch, clock: ManualClock) -> Self {
        let outbox = dir.path().join("outbox");
        let mut figment = Figment::new()
            .merge(Serialized::default("listen", "127.0.0.1:0"))
            .merge(Serialized::default("database_url", &database_url))
            .merge(Serialized::default("database_max_connections", 5))
            .merge(Serialized::default("outbox_dir", outbox.display().to_string()));
        if launch.shared_key {
            figment = figment.merge(Serialized::default("jwt_private_key", shared_signing_key().expose_secret()));
        }
        if let (Ok(redis), Some(prefix)) = (std::env::var("IDGATE_TEST_REDIS_URL"), &launch.redis_prefix) {
            figment = figment
                .merge(Serialized::default("redis_url", redis))
                .merge(Serialized::default("redis_prefix", prefix));
        }
        for (key, value) in &launch.pairs {
            figment = figment.merge(Serialized::default(key, value));
        }
        let settings = Settings::from_figment(figment).unwrap_or_else(|e| panic!("{e}"));
        let app = App::build_with_clock(settings, Arc::new(clock.clone()))
            .await
            .unwrap_or_else(|e| panic!("app failed to start: {e:?}"));
        let address = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| panic!("client: {e}"));
        Self { address, database_url, client, clock, outbox, dir, launch, stop: Some(stop) }
    }

    /// POSTs a GraphQL request and returns the JSON body.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        self.gql_with(None, query, variables).await
    }

    /// POSTs a GraphQL request with a bearer token.
    pub async fn gql_as(&self, token: &str, query: &str, variables: Value) -> Value {
        self.gql_with(Some(token), query, variables).await
    }

    async fn gql_with(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .header("User-Agent", "idgate-tests/1.0")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("request failed: {e}"));
        let status = response.status();
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body: Value = response.json().await.unwrap_or_else(|e| panic!("not JSON: {e}"));
        if status == 429 {
            // Only a request that did nothing but hit rate limits answers 429, with Retry-After.
            assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
            let longest = body["errors"]
                .as_array()
                .and_then(|e| e.iter().filter_map(|e| e["extensions"]["retryAfter"].as_u64()).max());
            assert_eq!(retry_after.and_then(|v| v.parse::<u64>().ok()), longest, "Retry-After for {body}");
        } else if status == 503 {
            // Only a request that did nothing because a shared part is down answers 503.
            assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE", "{body}");
        } else {
            assert_eq!(status, 200, "GraphQL over application/json answers 200 otherwise: {body}");
        }
        body
    }

    pub async fn register(&self, email: &str, password: &str) -> Value {
        self.gql(
            "mutation($input: RegisterInput!) { register(input: $input) { user { id email username role } } }",
            json!({ "input": { "email": email, "password": password } }),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Value {
        self.gql(LOGIN, json!({ "input": { "email": email, "password": password, "deviceName": "test laptop" } })).await
    }

    pub async fn verify_otp(&self, challenge_id: &str, code: &str) -> Value {
        self.gql(VERIFY_OTP, json!({ "input": { "challengeId": challenge_id, "code": code } })).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Value {
        self.gql(REFRESH, json!({ "token": refresh_token })).await
    }

    pub async fn me(&self, access_token: &str) -> Value {
        self.gql_as(access_token, "{ me { id email } }", json!({})).await
    }

    /// Registers `email` with `password` and verifies the address with the mailed code.
    pub async fn register_verified(&self, email: &str, password: &str) -> Value {
        let registered = self.register(email, password).await;
        assert!(registered["errors"].is_null(), "{registered}");
        let verified = self.verify_email_code(email, &self.last_code_for(email)).await;
        assert!(verified["errors"].is_null(), "{verified}");
        registered
    }

    pub async fn verify_email_code(&self, email: &str, code: &str) -> Value {
        self.gql(
            "mutation($input: VerifyEmailInput!) { verifyEmail(input: $input) { user { id email emailVerified } } }",
            json!({ "input": { "email": email, "code": code } }),
        )
        .await
    }

    /// Registers `email` with [`PASSWORD`], verifies it, and completes a login with the code.
    pub async fn signed_in(&self, email: &str) -> Tokens {
        self.register_verified(email, PASSWORD).await;
        self.log_in(email).await
    }

    /// Logs an existing user (password [`PASSWORD`]) in through the code step.
    pub async fn log_in(&self, email: &str) -> Tokens {
        let login = self.login(email, PASSWORD).await;
        let challenge = login["data"]["login"]["challengeId"]
            .as_str()
            .unwrap_or_else(|| panic!("no challenge: {login}"))
            .to_owned();
        let code = self.last_code_for(email);
        let verified = self.verify_otp(&challenge, &code).await;
        tokens(&verified["data"]["verifyOtp"])
    }

    /// Starts a login for `email` (password [`PASSWORD`]); returns the challenge id and the
    /// mailed code.
    pub async fn login_challenge(&self, email: &str) -> (String, String) {
        let login = self.login(email, PASSWORD).await;
        let challenge = login["data"]["login"]["challengeId"].as_str().unwrap_or_else(|| panic!("{login}")).to_owned();
        (challenge, self.last_code_for(email))
    }

    /// Presses the button of the email-verification page for `token` (its form POST).
    pub async fn press_verify_email(&self, token: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/verify-email", self.address))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every message in the outbox addressed to `email`, oldest first.
    pub fn mails_to(&self, email: &str) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.outbox)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        files.sort();
        files
            .into_iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter(|mail| mail.lines().any(|l| l.eq_ignore_ascii_case(&format!("To: {email}"))))
            .collect()
    }

    /// Creates a superuser with the CLI (as an operator would) and logs it in.
    pub async fn superuser(&self, email: &str) -> Tokens {
        let outbox = self.outbox.display().to_string();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_idgate"))
            .args(["create-superuser", "--email", email])
            .env("IDGATE_DATABASE_URL", &self.database_url)
            .env("IDGATE_OUTBOX_DIR", &outbox)
            .env("IDGATE_SUPERUSER_PASSWORD", PASSWORD)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap_or_else(|e| panic!("cannot run idgate: {e}"));
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        self.log_in(email).await
    }

    /// Creates an account of `role` through `createUser` as `creator`, logs it in, and returns
    /// its id and tokens.
    pub async fn account(&self, creator: &Tokens, email: &str, role: &str) -> (String, Tokens) {
        let created = self
            .gql_as(
                &creator.access,
                "mutation($input: CreateUserInput!) { createUser(input: $input) { user { id } } }",
                json!({ "input": { "email": email, "password": PASSWORD, "role": role, "emailVerified": true } }),
            )
            .await;
        let id = created["data"]["createUser"]["user"]["id"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned();
        (id, self.log_in(email).await)
    }

    /// Every text message in the outbox sent to `phone`, oldest first.
    pub fn sms_to(&self, phone: &str) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.outbox)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "sms"));
        files.sort();
        files
            .into_iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter(|sms| sms.lines().next() == Some(&format!("To: {phone}")))
            .collect()
    }

    /// The code in the newest text message to `phone`.
    pub fn last_sms_code(&self, phone: &str) -> String {
        let messages = self.sms_to(phone);
        let sms = messages.last().unwrap_or_else(|| panic!("no SMS to {phone}"));
        code_in(sms).unwrap_or_else(|| panic!("no code in: {sms}"))
    }

    /// Waits (up to two seconds) until `count` messages to `email` are in the outbox: some
    /// mail is sent in the background.
    pub async fn wait_for_mails(&self, email: &str, count: usize) -> Vec<String> {
        for _ in 0..40 {
            let mails = self.mails_to(email);
            if mails.len() >= count {
                return mails;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.mails_to(email)
    }

    /// The code in the newest mail to `email`.
    pub fn last_code_for(&self, email: &str) -> String {
        let mails = self.mails_to(email);
        let mail = mails.last().unwrap_or_else(|| panic!("no mail to {email}"));
        code_in(mail).unwrap_or_else(|| panic!("no code in: {mail}"))
    }
}

/// The first link in a mail that carries `?token=`, and its token.
pub fn link_in(mail: &str) -> Option<(String, String)> {
    // Undo quoted-printable soft breaks and escapes, in case a part was encoded that way.
    let text = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let start = text.find("http")?;
    let link: String = text[start..].chars().take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<').collect();
    let token = link.split("token=").nth(1)?.chars().take(43).collect::<String>();
    Some((link, token))
}

/// A well-formed code that is not `code`.
pub fn wrong_code(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

/// The first six-digit code after "code is ".
pub fn code_in(mail: &str) -> Option<String> {
    let start = mail.find("code is ")? + "code is ".len();
    let code: String = mail[start..].chars().take(6).collect();
    (code.len() == 6 && code.chars().all(|c| c.is_ascii_digit())).then_some(code)
}

/// Tokens from an AuthPayload JSON object.
pub fn tokens(payload: &Value) -> Tokens {
    let text = |v: &Value| v.as_str().unwrap_or_else(|| panic!("no tokens in {payload}")).to_owned();
    Tokens {
        access: text(&payload["accessToken"]),
        refresh: text(&payload["refreshToken"]),
        session_id: text(&payload["session"]["id"]),
    }
}

/// The `extensions.code` of the first error.
pub fn error_code(response: &Value) -> String {
    response["errors"][0]["extensions"]["code"].as_str().unwrap_or("<none>").to_owned()
}

/// The AuthPayload selection every token-returning operation asks for.
macro_rules! auth_payload {
    () => {
        "accessToken refreshToken tokenType expiresIn user { id email lastLoginAt } session { id deviceName current }"
    };
}

pub const LOGIN: &str = concat!(
    "mutation($input: LoginInput!) { login(input: $input) { __typename ",
    "... on OtpChallenge { challengeId channel destination expiresAt resendAvailableAt } ",
    "... on AuthPayload { ",
    auth_payload!(),
    " } } }"
);

pub const VERIFY_OTP: &str =
    concat!("mutation($input: VerifyOtpInput!) { verifyOtp(input: $input) { ", auth_payload!(), " } }");

pub const REFRESH: &str =
    concat!("mutation($token: String) { refresh(refreshToken: $token) { ", auth_payload!(), " } }");
