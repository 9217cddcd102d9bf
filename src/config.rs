//! Settings, read once at start from `IDGATE_*` environment variables (figment), validated before
//! anything else starts, and passed down explicitly. Secrets are `SecretString`s, so `Debug`
//! prints them redacted and they never reach a log line.

use std::{net::SocketAddr, path::PathBuf};

use figment::{Figment, providers::Env};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Which defaults apply: `development` keeps the conveniences (introspection, suggestions,
/// GraphiQL); `production` turns them off and insists on an https public URL and a configured
/// secret key. Each convenience can still be set explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Development,
    Production,
}

/// When register, login, requestPasswordReset and requestPhoneLogin need a CAPTCHA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptchaMode {
    #[default]
    Off,
    Always,
    /// Logins, once an address or an account has failed `captcha_after_failures` in the hour.
    AfterFailures,
}

/// Whose siteverify endpoint checks CAPTCHA tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptchaProvider {
    /// Google reCAPTCHA v2, or v3 (scored: see `captcha_min_score`).
    #[default]
    Recaptcha,
    Hcaptcha,
    /// Cloudflare Turnstile.
    Turnstile,
}

impl CaptchaProvider {
    /// The provider's public siteverify endpoint.
    pub fn verify_url(self) -> &'static str {
        match self {
            Self::Recaptcha => "https://www.google.com/recaptcha/api/siteverify",
            Self::Hcaptcha => "https://api.hcaptcha.com/siteverify",
            Self::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
        }
    }

    /// The name `authConfig.captcha.provider` reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Recaptcha => "RECAPTCHA",
            Self::Hcaptcha => "HCAPTCHA",
            Self::Turnstile => "TURNSTILE",
        }
    }
}

/// Whether a correct password is enough to log in, or a code must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginOtp {
    /// A 6-digit code is mailed after the password; `verifyOtp` completes the login.
    Email,
    /// The password alone returns tokens.
    Off,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    /// One JSON object per line, with the request's span fields.
    Json,
}

/// Whether access tokens are encrypted (JWE) around their signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenEncryption {
    #[default]
    Off,
    /// `alg: dir`, `enc: A256GCM` under IDGATE_TOKEN_ENCRYPTION_KEY.
    Dir,
}

/// Access-token signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    RS256,
    ES256,
    EdDSA,
}

/// Every setting idgate reads. Field `foo_bar` is the variable `IDGATE_FOO_BAR`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Public base URL: the token issuer and the base of links in mail. Unset (empty), it is
    /// `http://` + the listen address (a wildcard address reads as loopback).
    pub public_url: String,
    /// Whether `public_url` was derived from `listen`, so the app can name the port it
    /// actually bound when `listen` says port 0.
    #[serde(skip)]
    pub public_url_from_listen: bool,
    /// Audience written into and required from access tokens.
    pub token_audience: String,
    /// `sqlite://…` (created if missing) or `postgres://…`.
    pub database_url: SecretString,
    /// Max pooled database connections.
    pub database_max_connections: u32,
    /// `redis://…` or `rediss://…`; unset keeps ephemeral state in the database's `kv_entries` table.
    pub redis_url: Option<SecretString>,
    /// Prefix for every Redis key, so several deployments can share one Redis.
    pub redis_prefix: String,
    /// `email` (default) or `off`.
    pub login_otp: LoginOtp,
    /// Directory where outgoing mail is written as `.eml` files.
    pub outbox_dir: PathBuf,
    /// From address of outgoing mail.
    pub mail_from: String,
    /// Product name used in mail and refused inside passwords.
    pub product_name: String,
    /// RS256 (default, widest support), ES256 or EdDSA.
    pub jwt_algorithm: JwtAlgorithm,
    /// PKCS#8 PEM private key for access tokens; unset: generated once and kept in the database.
    pub jwt_private_key: Option<SecretString>,
    /// Key id published in the JWKS for a configured key (default: derived from the key).
    pub jwt_key_id: Option<String>,
    /// Secret keying one-time-code hashes; unset: generated once and kept in the database.
    pub secret_key: Option<SecretString>,
    /// Access-token lifetime.
    pub access_token_ttl_secs: u64,
    /// Absolute session lifetime; refreshing does not extend it.
    pub session_ttl_secs: u64,
    /// A session unused for this long expires (0 disables the inactivity timeout).
    pub session_idle_timeout_secs: u64,
    /// How long a just-rotated refresh token still works (for clients racing two refreshes).
    pub refresh_reuse_grace_secs: u64,
    /// `text` or `json` (read before the settings, to log their errors too; listed here so
    /// that it is validated and documented with the rest).
    pub log_format: LogFormat,
    /// A separate address serving only /metrics (no authentication: bind it to an internal
    /// interface); unset: no metrics listener.
    pub metrics_listen: Option<SocketAddr>,
    /// A bearer token that opens /metrics on the public port; unset: /metrics is not there.
    pub metrics_token: Option<SecretString>,
    /// `off` or `dir`: access tokens as JWE (dir + A256GCM) around the signed JWT.
    pub access_token_encryption: TokenEncryption,
    /// The 256-bit token encryption key, base64 (standard or URL-safe).
    pub token_encryption_key: Option<SecretString>,
    /// How often stored signing keys are reloaded, and so how long a rotated key is published
    /// before it signs and how long verifiers may cache the JWKS.
    pub key_refresh_secs: u64,
    /// Live sessions (devices) one account may have; a login beyond it ends the least recently
    /// used one. 0: no limit.
    pub max_sessions_per_user: u32,
    /// Lifetime of a one-time code.
    pub otp_ttl_secs: u64,
    /// Wrong codes allowed per challenge before it dies.
    pub otp_max_attempts: u32,
    /// Minimum wait between two sends of a code for one challenge.
    pub otp_resend_cooldown_secs: u64,
    /// Resends allowed per challenge.
    pub otp_max_resends: u32,
    /// Minimum password length in characters (floor 8).
    pub password_min_length: usize,
    /// Minimum zxcvbn score (0-4) a password must reach.
    pub password_min_score: u8,
    /// Argon2id memory cost in KiB.
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    pub argon2_iterations: u32,
    /// Argon2id lanes.
    pub argon2_parallelism: u32,
    /// Hashing threads (0: one per core). They run at idle OS priority.
    pub hash_threads: usize,
    /// Threads that serve requests (0: half the cores, at least one); see
    /// [`Settings::request_threads`].
    pub worker_threads: usize,
    /// Password hashes allowed to wait for a thread before logins get RATE_LIMITED.
    pub hash_queue_limit: usize,
    /// Login attempts per client IP per minute.
    pub login_rate_per_ip: u32,
    /// Login attempts per email address per hour.
    pub login_rate_per_email: u32,
    /// Registrations per client IP per hour.
    pub register_rate_per_ip: u32,
    /// Code verifications per client IP per minute.
    pub otp_rate_per_ip: u32,
    /// Refreshes per client IP per minute.
    pub refresh_rate_per_ip: u32,
    /// `tokenInfo` checks per client IP per minute (each alias counts).
    pub token_info_rate_per_ip: u32,
    /// Secret that callers of `POST /oauth/introspect` present (HTTP Basic password or bearer);
    /// unset: the endpoint is off (404).
    pub introspection_secret: Option<SecretString>,
    /// Largest accepted GraphQL request body in bytes.
    pub max_body_bytes: usize,
    /// Directory avatar images are stored in and served from (`/media/…`); created if missing.
    pub media_dir: PathBuf,
    /// Largest accepted avatar upload in bytes (a multipart request may exceed it by
    /// `max_body_bytes` for its other parts).
    pub avatar_max_bytes: usize,
    /// Maximum query depth.
    pub query_depth_limit: usize,
    /// Maximum query complexity; each auth mutation costs `AUTH_MUTATION_COST`.
    pub query_complexity_limit: usize,
    /// `development` (default) or `production`: see [`Environment`].
    pub env: Environment,
    /// Whether the schema can be introspected (GraphiQL needs it); unset: on in development.
    pub introspection: Option<bool>,
    /// Whether validation errors suggest similar field names; unset: on in development.
    pub suggestions: Option<bool>,
    /// Whether a browser GET of /graphql opens GraphiQL; unset: on in development.
    pub graphiql: Option<bool>,
    /// Verified access tokens kept in memory to skip repeated signature checks.
    pub token_cache_capacity: usize,
    /// Seconds to finish in-flight requests after SIGTERM / Ctrl-C.
    pub shutdown_grace_secs: u64,
    /// Seconds between a stop signal and the end of accepting requests, while /readyz already
    /// answers 503 so the load balancer moves traffic away; unset: 5 in production, 0 otherwise.
    pub shutdown_delay_secs: Option<u64>,
    /// Comma-separated browser origins allowed to call the API cross-origin (CORS); empty: none.
    pub cors_origins: String,
    /// Comma-separated addresses or CIDR networks of reverse proxies whose `Forwarded` /
    /// `X-Forwarded-For` headers are believed; empty: the connection's peer is the client.
    pub trusted_proxies: String,
    /// Failed password attempts (and wrong login codes) on one account within
    /// `lockout_window_secs` that lock it; 0 turns lockout off.
    pub lockout_threshold: u32,
    pub lockout_window_secs: u64,
    /// The first lock's length; each further lock within a day doubles it, up to the max.
    pub lockout_duration_secs: u64,
    pub lockout_max_duration_secs: u64,
    /// Cookies without `Secure` (and so without the `__Host-` prefix), for local http only;
    /// refused in production.
    pub insecure_cookies: bool,
    /// `off`, `always` or `after_failures`.
    pub captcha_mode: CaptchaMode,
    /// `recaptcha`, `hcaptcha` or `turnstile`.
    pub captcha_provider: CaptchaProvider,
    /// The provider's secret key (server side).
    pub captcha_secret: Option<SecretString>,
    /// The provider's site key, handed to frontends in `authConfig.captcha`.
    pub captcha_site_key: String,
    /// The siteverify URL; unset: the provider's public endpoint.
    pub captcha_verify_url: Option<String>,
    /// reCAPTCHA v3: the lowest score accepted (0.0 to 1.0).
    pub captcha_min_score: f64,
    /// `after_failures`: failed logins from an address or on an account within the hour
    /// after which logins need a CAPTCHA.
    pub captcha_after_failures: u32,
    /// Whether login is refused (EMAIL_NOT_VERIFIED) until the email is verified.
    pub require_email_verification: bool,
    /// Lifetime of an email-verification link and code.
    pub email_verification_ttl_secs: u64,
    /// Lifetime of a password-reset link, code and token.
    pub password_reset_ttl_secs: u64,
    /// Frontend page for email-verification links (`?token=` is appended); unset: idgate's own page.
    pub frontend_verify_email_url: Option<String>,
    /// Frontend page for password-reset links (`?token=` is appended); unset: idgate's own page.
    pub frontend_reset_password_url: Option<String>,
    /// Messages of one kind to one address per day (verification and reset mails, SMS codes).
    pub messages_per_address_per_day: u32,
    /// SMS codes per client IP per hour.
    pub sms_rate_per_ip: u32,
    /// Whether `requestPhoneLogin` creates an account for an unknown number on verification.
    pub phone_signup: bool,
    /// Comma-separated ISO 3166 country codes SMS may be sent to (empty: any), against SMS pumping.
    pub sms_allowed_countries: String,
    /// SMTP server (`smtp://user:pass@host:587`, STARTTLS when offered, `?tls=required` to insist;
    /// `smtps://` for implicit TLS); unset: mail goes to the outbox directory.
    pub smtp_url: Option<SecretString>,
    /// Seconds an SMTP exchange may take before the send fails.
    pub smtp_timeout_secs: u64,
    /// Directory of template overrides (`<locale>/<name>.<subject|txt|html>`).
    pub templates_dir: Option<PathBuf>,
    /// Base URL of a Twilio-compatible Messages API; unset: SMS go to the outbox directory.
    pub sms_gateway_url: Option<String>,
    /// Account SID for the SMS gateway.
    pub sms_account_sid: Option<String>,
    /// Auth token for the SMS gateway.
    pub sms_auth_token: Option<SecretString>,
    /// Sender number or id for SMS.
    pub sms_from: String,
    /// Days audit events are kept (0: forever); older ones are pruned hourly.
    pub audit_retention_days: u64,
    /// Google sign-in: the OAuth client id, also the audience of Google ID tokens; unset: off.
    pub google_client_id: Option<String>,
    /// Google's client secret; without it only the ID-token flow is offered.
    pub google_client_secret: Option<SecretString>,
    /// Google's issuer; its discovery document and keys are read from there.
    pub google_issuer: String,
    /// Facebook login: the app id; unset: off. Needs the app secret.
    pub facebook_app_id: Option<String>,
    pub facebook_app_secret: Option<SecretString>,
    /// Facebook's login dialog base (`<url>/dialog/oauth`).
    pub facebook_url: String,
    /// Facebook's Graph API base (`/oauth/access_token`, `/debug_token`, `/me`).
    pub facebook_graph_url: String,
    /// Whether Facebook's email counts as verified (Facebook does not say so per user; only
    /// turn this on if the app's review guarantees confirmed addresses).
    pub facebook_email_verified: bool,
    /// GitHub sign-in: the OAuth app's client id; unset: off. Needs the client secret.
    pub github_client_id: Option<String>,
    pub github_client_secret: Option<SecretString>,
    /// GitHub's web base (`/login/oauth/authorize`, `/login/oauth/access_token`); GitHub
    /// Enterprise sets its own.
    pub github_url: String,
    /// GitHub's REST API base (`/user`, `/user/emails`).
    pub github_api_url: String,
    /// Generic OpenID Connect providers, a JSON list of
    /// `{"name", "issuer", "client_id", "client_secret"?, "scopes"?}`.
    pub oidc_providers: Option<SecretString>,
    /// Comma-separated redirect URIs a social sign-in may return to (exact match).
    pub social_redirect_uris: String,
    /// Whether a social sign-in needs an address the provider vouches for.
    pub social_require_email: bool,
    /// Whether a social sign-in is followed by the mailed login code (when IDGATE_LOGIN_OTP
    /// asks for codes, they are not asked again after a provider by default).
    pub social_login_otp: bool,
    /// Seconds a call to a sign-in provider may take.
    pub social_timeout_secs: u64,
}

/// One generic OpenID Connect provider of `IDGATE_OIDC_PROVIDERS`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderSetting {
    /// The name clients use (`provider: "keycloak"`), shown upper-cased.
    pub name: String,
    /// The issuer URL; discovery is at `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// Without a secret only the ID-token flow is offered.
    pub client_secret: Option<SecretString>,
    /// Scopes besides `openid` (default: `email`, `profile`).
    pub scopes: Option<Vec<String>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: String::new(),
            public_url_from_listen: false,
            token_audience: "idgate".into(),
            database_url: SecretString::from("sqlite://idgate.db?mode=rwc"),
            database_max_connections: 10,
            redis_url: None,
            redis_prefix: "idgate:".into(),
            login_otp: LoginOtp::Email,
            outbox_dir: PathBuf::from("outbox"),
            mail_from: "idgate <no-reply@localhost>".into(),
            product_name: "idgate".into(),
            jwt_algorithm: JwtAlgorithm::RS256,
            jwt_private_key: None,
            jwt_key_id: None,
            secret_key: None,
            access_token_ttl_secs: 15 * 60,
            session_ttl_secs: 30 * 24 * 3600,
            session_idle_timeout_secs: 14 * 24 * 3600,
            max_sessions_per_user: 0,
            key_refresh_secs: 60,
            log_format: LogFormat::Text,
            metrics_listen: None,
            metrics_token: None,
            access_token_encryption: TokenEncryption::Off,
            token_encryption_key: None,
            refresh_reuse_grace_secs: 0,
            otp_ttl_secs: 10 * 60,
            otp_max_attempts: 5,
            otp_resend_cooldown_secs: 60,
            otp_max_resends: 5,
            password_min_length: 12,
            password_min_score: 3,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_threads: 0,
            worker_threads: 0,
            hash_queue_limit: 256,
            login_rate_per_ip: 30,
            login_rate_per_email: 20,
            register_rate_per_ip: 20,
            otp_rate_per_ip: 30,
            refresh_rate_per_ip: 120,
            token_info_rate_per_ip: 300,
            introspection_secret: None,
            max_body_bytes: 64 * 1024,
            media_dir: PathBuf::from("media"),
            avatar_max_bytes: 2 * 1024 * 1024,
            query_depth_limit: 12,
            query_complexity_limit: 1000,
            env: Environment::Development,
            introspection: None,
            suggestions: None,
            graphiql: None,
            token_cache_capacity: 10_000,
            shutdown_grace_secs: 20,
            shutdown_delay_secs: None,
            cors_origins: String::new(),
            trusted_proxies: String::new(),
            lockout_threshold: 5,
            lockout_window_secs: 900,
            lockout_duration_secs: 900,
            lockout_max_duration_secs: 86400,
            insecure_cookies: false,
            captcha_mode: CaptchaMode::Off,
            captcha_provider: CaptchaProvider::Recaptcha,
            captcha_secret: None,
            captcha_site_key: String::new(),
            captcha_verify_url: None,
            captcha_min_score: 0.5,
            captcha_after_failures: 3,
            require_email_verification: true,
            email_verification_ttl_secs: 24 * 3600,
            password_reset_ttl_secs: 30 * 60,
            frontend_verify_email_url: None,
            frontend_reset_password_url: None,
            messages_per_address_per_day: 5,
            sms_rate_per_ip: 10,
            phone_signup: false,
            sms_allowed_countries: String::new(),
            smtp_url: None,
            smtp_timeout_secs: 10,
            templates_dir: None,
            sms_gateway_url: None,
            sms_account_sid: None,
            sms_auth_token: None,
            sms_from: "idgate".into(),
            audit_retention_days: 0,
            google_client_id: None,
            google_client_secret: None,
            google_issuer: "https://accounts.google.com".into(),
            facebook_app_id: None,
            facebook_app_secret: None,
            facebook_url: "https://www.facebook.com/v19.0".into(),
            facebook_graph_url: "https://graph.facebook.com/v19.0".into(),
            facebook_email_verified: false,
            github_client_id: None,
            github_client_secret: None,
            github_url: "https://github.com".into(),
            github_api_url: "https://api.github.com".into(),
            oidc_providers: None,
            social_redirect_uris: String::new(),
            social_require_email: true,
            social_login_otp: false,
            social_timeout_secs: 10,
        }
    }
}

/// Settings could not be read or are inconsistent; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

/// The most request threads `IDGATE_WORKER_THREADS` may ask for.
const MAX_WORKER_THREADS: usize = 1024;

impl Settings {
    /// Reads `IDGATE_*` from the environment over the defaults, then validates.
    pub fn from_env() -> Result<Self, ConfigError> {
        // Variables read elsewhere (the CLI, the test harness) are not settings.
        let env = Env::prefixed("IDGATE_").ignore(&[
            "superuser_password",
            "test_database_url",
            "test_redis_url",
            "bench_database_url",
        ]);
        Self::from_figment(Figment::new().merge(env))
    }

    /// Reads settings from any figment (the environment, or pairs a test supplies).
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment.extract().map_err(|e| {
            let detail = e
                .into_iter()
                .map(|e| {
                    let var = e
                        .path
                        .first()
                        .map(|key| format!("IDGATE_{}", key.to_uppercase()))
                        .unwrap_or_else(|| "IDGATE_*".into());
                    format!("{var}: {}", e.kind)
                })
                .collect::<Vec<_>>()
                .join("; ");
            ConfigError(detail)
        })?;
        let mut settings = settings;
        if settings.public_url.is_empty() {
            settings.use_listen_address(settings.listen);
        }
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |var: &str, why: &str| Err(ConfigError(format!("IDGATE_{var}: {why}")));
        if self.env == Environment::Production {
            if !self.public_url.starts_with("https://") {
                return fail("PUBLIC_URL", "must be an https:// URL in production (tokens and mailed links name it)");
            }
            if self.secret_key.is_none() {
                return fail("SECRET_KEY", "must be set in production, so every instance keys codes alike");
            }
            if self.insecure_cookies {
                return fail("INSECURE_COOKIES", "cookies are always Secure in production");
            }
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return fail("PUBLIC_URL", "must start with http:// or https://");
        }
        let db = self.database_url.expose_secret();
        if !(db.starts_with("sqlite:") || db.starts_with("postgres://") || db.starts_with("postgresql://")) {
            return fail("DATABASE_URL", "must be a sqlite: or postgres:// URL");
        }
        if let Some(redis) = &self.redis_url {
            let redis = redis.expose_secret();
            if !(redis.starts_with("redis://") || redis.starts_with("rediss://")) {
                return fail("REDIS_URL", "must be a redis:// or rediss:// URL");
            }
        }
        if !(8..=128).contains(&self.password_min_length) {
            return fail("PASSWORD_MIN_LENGTH", "must be between 8 and 128");
        }
        if self.password_min_score > 4 {
            return fail("PASSWORD_MIN_SCORE", "must be between 0 and 4");
        }
        // The runtime starts every worker at once, and a thread the system cannot give would
        // stop the start with a panic rather than this message.
        if self.worker_threads > MAX_WORKER_THREADS {
            return fail("WORKER_THREADS", "must be at most 1024 (0: half the cores)");
        }
        if self.argon2_memory_kib < 8 * 1024 || self.argon2_iterations == 0 || self.argon2_parallelism == 0 {
            return fail("ARGON2_MEMORY_KIB", "argon2 needs at least 8192 KiB, 1 iteration and 1 lane");
        }
        let positive = [
            ("ACCESS_TOKEN_TTL_SECS", self.access_token_ttl_secs),
            ("SESSION_TTL_SECS", self.session_ttl_secs),
            ("OTP_TTL_SECS", self.otp_ttl_secs),
            ("OTP_MAX_ATTEMPTS", u64::from(self.otp_max_attempts)),
            ("MAX_BODY_BYTES", self.max_body_bytes as u64),
            ("AVATAR_MAX_BYTES", self.avatar_max_bytes as u64),
            ("HASH_QUEUE_LIMIT", self.hash_queue_limit as u64),
            ("TOKEN_CACHE_CAPACITY", self.token_cache_capacity as u64),
            ("DATABASE_MAX_CONNECTIONS", u64::from(self.database_max_connections)),
            ("KEY_REFRESH_SECS", self.key_refresh_secs),
        ];
        for (var, value) in positive {
            if value == 0 {
                return fail(var, "must be greater than 0");
            }
        }
        if self.captcha_mode != CaptchaMode::Off && self.captcha_secret.is_none() {
            return fail("CAPTCHA_SECRET", "must be set when IDGATE_CAPTCHA_MODE is not off");
        }
        if !(0.0..=1.0).contains(&self.captcha_min_score) {
            return fail("CAPTCHA_MIN_SCORE", "must be between 0.0 and 1.0");
        }
        if self.trusted_proxy_list().is_err() {
            return fail("TRUSTED_PROXIES", "must list addresses or CIDR networks like 10.0.0.0/8, comma-separated");
        }
        for origin in self.cors_origin_list() {
            let scheme_ok = origin.starts_with("http://") || origin.starts_with("https://");
            let bare = origin.split_once("://").is_some_and(|(_, rest)| !rest.is_empty() && !rest.contains('/'));
            if !scheme_ok || !bare {
                return fail("CORS_ORIGINS", "must list origins like https://app.example.com, comma-separated");
            }
        }
        if self.sms_gateway_url.is_some() && (self.sms_account_sid.is_none() || self.sms_auth_token.is_none()) {
            return fail("SMS_GATEWAY_URL", "needs IDGATE_SMS_ACCOUNT_SID and IDGATE_SMS_AUTH_TOKEN");
        }
        for (var, url) in [
            ("FRONTEND_VERIFY_EMAIL_URL", &self.frontend_verify_email_url),
            ("FRONTEND_RESET_PASSWORD_URL", &self.frontend_reset_password_url),
            ("SMS_GATEWAY_URL", &self.sms_gateway_url),
        ] {
            if url.as_deref().is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
                return fail(var, "must be an http:// or https:// URL");
            }
        }
        if self.sms_allowed_country_list().iter().any(|c| c.len() != 2 || !c.chars().all(|c| c.is_ascii_uppercase())) {
            return fail("SMS_ALLOWED_COUNTRIES", "must list two-letter country codes like US,GB");
        }
        if self.access_token_ttl_secs > 24 * 3600 {
            return fail("ACCESS_TOKEN_TTL_SECS", "must be at most one day");
        }
        if self.access_token_encryption == TokenEncryption::Dir && self.token_encryption_key_bytes().is_none() {
            return fail(
                "TOKEN_ENCRYPTION_KEY",
                "must be 32 random bytes in base64 when IDGATE_ACCESS_TOKEN_ENCRYPTION=dir",
            );
        }
        self.validate_social()
    }

    /// The token encryption key's bytes, when set and exactly 256 bits.
    pub fn token_encryption_key_bytes(&self) -> Option<Vec<u8>> {
        use base64::{Engine, engine::general_purpose};
        let text = self.token_encryption_key.as_ref()?.expose_secret().trim().to_owned();
        let bytes = general_purpose::STANDARD
            .decode(&text)
            .or_else(|_| general_purpose::URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .ok()?;
        (bytes.len() == 32).then_some(bytes)
    }

    fn validate_social(&self) -> Result<(), ConfigError> {
        let fail = |var: &str, why: &str| Err(ConfigError(format!("IDGATE_{var}: {why}")));
        let is_url = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        for (var, url) in [
            ("GOOGLE_ISSUER", &self.google_issuer),
            ("FACEBOOK_URL", &self.facebook_url),
            ("FACEBOOK_GRAPH_URL", &self.facebook_graph_url),
            ("GITHUB_URL", &self.github_url),
            ("GITHUB_API_URL", &self.github_api_url),
        ] {
            if !is_url(url) {
                return fail(var, "must be an http:// or https:// URL");
            }
        }
        if self.facebook_app_id.is_some() != self.facebook_app_secret.is_some() {
            return fail("FACEBOOK_APP_SECRET", "IDGATE_FACEBOOK_APP_ID and IDGATE_FACEBOOK_APP_SECRET go together");
        }
        if self.github_client_id.is_some() != self.github_client_secret.is_some() {
            return fail("GITHUB_CLIENT_SECRET", "IDGATE_GITHUB_CLIENT_ID and IDGATE_GITHUB_CLIENT_SECRET go together");
        }
        if self.google_client_secret.is_some() && self.google_client_id.is_none() {
            return fail("GOOGLE_CLIENT_ID", "must be set with IDGATE_GOOGLE_CLIENT_SECRET");
        }
        let generic = self.oidc_provider_list()?;
        let mut names: Vec<String> = generic.iter().map(|p| p.name.to_uppercase()).collect();
        names.extend(["GOOGLE", "FACEBOOK", "GITHUB"].map(String::from));
        for provider in &generic {
            let name_ok = (1..=32).contains(&provider.name.len())
                && provider.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !name_ok {
                return fail("OIDC_PROVIDERS", "each name must be 1 to 32 letters, digits, '_' or '-'");
            }
            if names.iter().filter(|n| **n == provider.name.to_uppercase()).count() > 1 {
                return fail("OIDC_PROVIDERS", "names must be unique and not google, facebook or github");
            }
            if !is_url(&provider.issuer) || provider.client_id.is_empty() {
                return fail("OIDC_PROVIDERS", "each provider needs an http(s) issuer and a client_id");
            }
        }
        for uri in self.social_redirect_uri_list() {
            let parsed = url::Url::parse(uri);
            if !is_url(uri) || parsed.as_ref().map_or(true, |u| u.fragment().is_some() || u.host().is_none()) {
                return fail(
                    "SOCIAL_REDIRECT_URIS",
                    "must list absolute http(s) URLs without fragments, comma-separated",
                );
            }
        }
        if self.social_timeout_secs == 0 {
            return fail("SOCIAL_TIMEOUT_SECS", "must be greater than 0");
        }
        Ok(())
    }

    /// The generic OpenID Connect providers.
    pub fn oidc_provider_list(&self) -> Result<Vec<OidcProviderSetting>, ConfigError> {
        let Some(raw) = &self.oidc_providers else { return Ok(Vec::new()) };
        // Only the position: serde_json's message may quote the (secret-bearing) text.
        serde_json::from_str(raw.expose_secret()).map_err(|e| {
            ConfigError(format!(
                "IDGATE_OIDC_PROVIDERS: must be a JSON list of {{name, issuer, client_id, client_secret?, scopes?}} \
                 (error at line {} column {})",
                e.line(),
                e.column()
            ))
        })
    }

    /// The redirect URIs social sign-ins may use.
    pub fn social_redirect_uri_list(&self) -> Vec<&str> {
        self.social_redirect_uris.split(',').map(str::trim).filter(|u| !u.is_empty()).collect()
    }

    /// How many threads serve requests: `worker_threads`, or half the cores (at least one).
    ///
    /// Not one per core, as the async runtime would have it: the hashing pool already has a
    /// thread on every core (at idle priority), and each request thread beyond what the traffic
    /// needs costs wake-ups. A request thread that picks up work wakes an idle sibling to share
    /// it, and every wake-up takes a core from a hash. On two cores, a login took about 0.1 ms
    /// less of the machine with one request thread than with two, and the bench's token checks
    /// ran faster too (its load generator shares the cores). README, "Benchmarks".
    pub fn request_threads(&self) -> usize {
        match self.worker_threads {
            0 => std::thread::available_parallelism().map_or(1, |cores| cores.get().div_ceil(2)),
            threads => threads,
        }
    }

    /// Derives the public URL from the address idgate listens on.
    pub fn use_listen_address(&mut self, listen: SocketAddr) {
        self.public_url = public_url_of(listen);
        self.public_url_from_listen = true;
    }

    /// The issuer claim: the public URL without a trailing slash.
    pub fn issuer(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }

    fn development(&self) -> bool {
        self.env == Environment::Development
    }

    /// How long a stopping instance keeps serving while reporting unready.
    pub fn shutdown_delay(&self) -> std::time::Duration {
        let default = if self.development() { 0 } else { 5 };
        std::time::Duration::from_secs(self.shutdown_delay_secs.unwrap_or(default))
    }

    /// Whether introspection is on: as set, else only in development.
    pub fn introspection_enabled(&self) -> bool {
        self.introspection.unwrap_or(self.development())
    }

    /// Whether validation errors suggest field names: as set, else only in development.
    pub fn suggestions_enabled(&self) -> bool {
        self.suggestions.unwrap_or(self.development())
    }

    /// Whether GraphiQL is served: as set, else only in development.
    pub fn graphiql_enabled(&self) -> bool {
        self.graphiql.unwrap_or(self.development())
    }

    /// The trusted proxies' networks; a bare address is a network of one.
    pub fn trusted_proxy_list(&self) -> Result<Vec<ipnet::IpNet>, ipnet::AddrParseError> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().or_else(|e| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from).map_err(|_| e)))
            .collect()
    }

    /// The configured CORS origins.
    pub fn cors_origin_list(&self) -> Vec<&str> {
        self.cors_origins.split(',').map(str::trim).filter(|o| !o.is_empty()).collect()
    }

    /// The countries SMS may go to (empty: any).
    pub fn sms_allowed_country_list(&self) -> Vec<String> {
        self.sms_allowed_countries.split(',').map(|c| c.trim().to_uppercase()).filter(|c| !c.is_empty()).collect()
    }

    /// Whether the database is PostgreSQL (otherwise SQLite).
    pub fn uses_postgres(&self) -> bool {
        self.database_url.expose_secret().starts_with("postgres")
    }
}

/// The URL a client on this machine reaches `listen` at: the default public URL.
fn public_url_of(listen: SocketAddr) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    format!("http://{host}:{}", listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    fn with(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut figment = Figment::new();
        for (key, value) in pairs {
            figment = figment.merge(Serialized::default(key, value));
        }
        Settings::from_figment(figment)
    }

    #[test]
    fn defaults_are_valid() {
        assert!(with(&[]).is_ok());
    }

    #[test]
    fn request_threads_are_half_the_cores_unless_set() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(with(&[]).map(|s| s.request_threads()).ok(), Some(cores.div_ceil(2)));
        let three = Settings::from_figment(Figment::new().merge(Serialized::default("worker_threads", 3)));
        assert_eq!(three.map(|s| s.request_threads()).ok(), Some(3));
        let err = with(&[("worker_threads", "many")]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("IDGATE_WORKER_THREADS"), "{err}");
        let many = Settings::from_figment(Figment::new().merge(Serialized::default("worker_threads", 100_000)));
        let err = many.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("IDGATE_WORKER_THREADS") && err.contains("1024"), "{err}");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = with(&[("login_otp", "sms")]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("IDGATE_LOGIN_OTP"), "{err}");
        let err = with(&[("password_min_length", "6")]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("IDGATE_PASSWORD_MIN_LENGTH"), "{err}");
    }

    #[test]
    fn social_settings_are_checked_at_start_without_echoing_secrets() {
        let error = |pairs: &[(&str, &str)]| with(pairs).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error(&[("github_client_id", "x")]).contains("IDGATE_GITHUB_CLIENT_SECRET"));
        assert!(error(&[("facebook_app_secret", "x")]).contains("IDGATE_FACEBOOK_APP_SECRET"));
        assert!(error(&[("social_redirect_uris", "app.test/cb")]).contains("IDGATE_SOCIAL_REDIRECT_URIS"));
        assert!(error(&[("social_redirect_uris", "https://app.test/cb#x")]).contains("IDGATE_SOCIAL_REDIRECT_URIS"));
        let leaked = error(&[(
            "oidc_providers",
            r#"[{"name": "kc", "issuer": "https://kc.test", "client_id": 5, "client_secret": "hunter2"}]"#,
        )]);
        assert!(leaked.contains("IDGATE_OIDC_PROVIDERS") && !leaked.contains("hunter2"), "{leaked}");
        let clash =
            error(&[("oidc_providers", r#"[{"name": "Google", "issuer": "https://kc.test", "client_id": "a"}]"#)]);
        assert!(clash.contains("unique"), "{clash}");
        let fine = with(&[
            (
                "oidc_providers",
                r#"[{"name": "kc", "issuer": "https://kc.test", "client_id": "a", "client_secret": "b"}]"#,
            ),
            ("social_redirect_uris", "https://app.test/cb, http://localhost:3000/cb"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fine.social_redirect_uri_list(), ["https://app.test/cb", "http://localhost:3000/cb"]);
    }

    #[test]
    fn encrypted_tokens_need_a_256_bit_key() {
        let error = |pairs: &[(&str, &str)]| with(pairs).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error(&[("access_token_encryption", "dir")]).contains("IDGATE_TOKEN_ENCRYPTION_KEY"));
        let short = [("access_token_encryption", "dir"), ("token_encryption_key", "c2hvcnQ=")];
        assert!(error(&short).contains("IDGATE_TOKEN_ENCRYPTION_KEY"));
        let good = [
            ("access_token_encryption", "dir"),
            ("token_encryption_key", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
        ];
        assert!(with(&good).is_ok());
        assert!(error(&[("access_token_encryption", "rsa")]).contains("IDGATE_ACCESS_TOKEN_ENCRYPTION"));
    }

    #[test]
    fn an_avatar_cap_of_zero_is_refused() {
        let err = with(&[("avatar_max_bytes", "0")]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("IDGATE_AVATAR_MAX_BYTES"), "{err}");
    }

    #[test]
    fn the_public_url_defaults_to_the_listen_address() {
        let settings = with(&[("listen", "127.0.0.1:9191")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.issuer(), "http://127.0.0.1:9191");
        let wildcard = with(&[("listen", "0.0.0.0:80")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(wildcard.issuer(), "http://127.0.0.1:80");
        let v6 = with(&[("listen", "[::]:8443")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v6.issuer(), "http://[::1]:8443");
    }

    #[test]
    fn a_configured_public_url_wins_over_the_listen_address() {
        let settings = with(&[("listen", "0.0.0.0:9191"), ("public_url", "https://id.example.com/")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.issuer(), "https://id.example.com");
    }

    #[test]
    fn trusted_proxies_take_networks_and_bare_addresses_and_refuse_the_rest() {
        let settings = with(&[("trusted_proxies", "10.0.0.0/8, 127.0.0.1 ,::1")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.trusted_proxy_list().map(|l| l.len()).ok(), Some(3));
        let err = with(&[("trusted_proxies", "10.0.0.0/33")]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("IDGATE_TRUSTED_PROXIES"), "{err}");
    }

    #[test]
    fn production_turns_the_conveniences_off_unless_set() {
        let secure =
            [("env", "production"), ("public_url", "https://id.example.com"), ("secret_key", "a long secret 123")];
        let production = with(&secure).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !production.introspection_enabled() && !production.suggestions_enabled() && !production.graphiql_enabled()
        );
        let mut chosen = Figment::new().merge(Serialized::default("introspection", true));
        for (key, value) in secure {
            chosen = chosen.merge(Serialized::default(key, value));
        }
        let chosen = Settings::from_figment(chosen).unwrap_or_else(|e| panic!("{e}"));
        assert!(chosen.introspection_enabled(), "an explicit setting wins");
        let development = with(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            development.introspection_enabled() && development.suggestions_enabled() && development.graphiql_enabled()
        );
    }

    #[test]
    fn production_refuses_an_http_public_url_and_a_missing_secret_key() {
        let err = with(&[("env", "production"), ("secret_key", "a long secret 123")]).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("IDGATE_PUBLIC_URL"), "the default http:// URL is refused");
        let err = with(&[("env", "production"), ("public_url", "https://id.example.com")]).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("IDGATE_SECRET_KEY"));
        let production =
            [("env", "production"), ("public_url", "https://id.example.com"), ("secret_key", "a long secret 123")];
        let mut figment = Figment::new().merge(Serialized::default("insecure_cookies", true));
        for (key, value) in production {
            figment = figment.merge(Serialized::default(key, value));
        }
        let err = Settings::from_figment(figment).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("IDGATE_INSECURE_COOKIES"), "cookies stay Secure in production");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let settings = with(&[("secret_key", "hunter2-hunter2")]).ok();
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
