//! `Services`: every feature service and the shared parts they are built on, wired once from
//! the settings. Resolvers reach them through the schema data; nothing else builds them.

use std::{sync::Arc, time::Duration};

use sea_orm::{DatabaseConnection, DbBackend};
use secrecy::ExposeSecret;

use crate::{
    accounts::service::{AccountPolicy, AccountService},
    admin::service::AdminService,
    audit::service::AuditLog,
    auth::{
        keys,
        service::{AuthPolicy, AuthService},
        tokens::TokenService,
    },
    clock::Clock,
    config::{Settings, TokenEncryption},
    db,
    error::{AppError, AppResult},
    kv::{DatabaseKv, Kv, RedisKv},
    media::service::MediaService,
    notify::{
        mail::{Mailer, OutboxMailer, SmtpMailer},
        sms::{OutboxSms, SmsSender, TwilioSms},
        templates::Templates,
    },
    security::{
        captcha::Captcha,
        codes::CodeHasher,
        cookies::CookieJar,
        hash_pool::HashPool,
        jwe::TokenCipher,
        lockout::{Lockout, LockoutPolicy},
        one_time::OneTimeSecrets,
        password_policy::PasswordPolicy,
        passwords::{HashCost, Passwords},
        rate_limit::RateLimiter,
        send_limits::SendLimits,
    },
    social::{
        providers::Providers,
        service::{SocialPolicy, SocialService},
    },
};

/// How often expired rows leave the database KV (they are invisible from the moment they expire).
const KV_SWEEP_INTERVAL: Duration = Duration::from_secs(300);

/// Everything resolvers reach through the schema data: the feature services and the shared
/// parts they are built on.
#[derive(Clone)]
pub struct Services {
    pub accounts: AccountService,
    pub admin: AdminService,
    pub auth: AuthService,
    pub audit: AuditLog,
    pub clock: Arc<dyn Clock>,
    pub kv: Arc<dyn Kv>,
    pub db: DatabaseConnection,
    pub media: MediaService,
    pub social: SocialService,
    /// Token cookies and CSRF tokens for browser clients.
    pub cookies: CookieJar,
}

impl Services {
    /// Connects, migrates and wires every service; each policy reads its own settings.
    pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> AppResult<Self> {
        let url = &db::resolve_url(settings.database_url.expose_secret()).await;
        db::migrate(url).await?;
        let db = db::connect(url, settings.database_max_connections).await?;
        // One held connection per core (at most the pool's size) for the reads of every
        // request's path: the token check and a login's account lookup.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let reader = Arc::new(db::Reader::new(
            url,
            db.get_database_backend(),
            cores.min(settings.database_max_connections as usize),
        )?);
        let kv = build_kv(settings, &db, &clock).await?;
        let mailer = build_mailer(settings).await?;
        let sms = build_sms(settings).await?;
        let templates = Templates::new(settings.templates_dir.clone())?;
        let media = MediaService::new(
            db.clone(),
            Arc::clone(&clock),
            settings.media_dir.clone(),
            settings.issuer(),
            settings.avatar_max_bytes,
        );
        let pool = Arc::new(HashPool::new(settings.hash_threads, settings.hash_queue_limit)?);
        let passwords = Passwords::new(HashCost::from_settings(settings), pool)?;
        let key_store = keys::KeyStore::open(&db, settings, clock.as_ref()).await?;
        let ring = key_store.ring(clock.now()).await?;
        let code_secret = keys::load_code_secret(&db, settings, clock.as_ref()).await?;
        let tokens = Arc::new(
            TokenService::new(
                ring,
                settings.issuer(),
                &settings.token_audience,
                settings.access_token_ttl_secs,
                Arc::clone(&clock),
                settings.token_cache_capacity,
            )
            .with_cipher(token_cipher(settings)?),
        );
        if key_store.is_stored() {
            spawn_key_reloading(key_store, Arc::clone(&tokens), Arc::clone(&clock), settings.key_refresh_secs);
        }
        let cookies = CookieJar::new(
            !settings.insecure_cookies,
            Duration::from_secs(settings.access_token_ttl_secs),
            Duration::from_secs(settings.session_ttl_secs),
            CodeHasher::new(code_secret.clone()),
        );
        let secrets = OneTimeSecrets::new(
            Arc::clone(&kv),
            Arc::clone(&clock),
            CodeHasher::new(code_secret),
            settings.otp_max_attempts,
        );
        let limiter = RateLimiter::new(Arc::clone(&kv), Arc::clone(&clock));
        let send_limits = SendLimits::from_settings(limiter.clone(), settings);
        let policy = PasswordPolicy::from_settings(settings);
        let captcha = Captcha::from_settings(settings, limiter.clone())?;
        let lockout =
            Lockout::new(Arc::clone(&kv), Arc::clone(&clock), limiter.clone(), LockoutPolicy::from_settings(settings));
        let accounts = AccountService {
            db: db.clone(),
            passwords: passwords.clone(),
            policy: policy.clone(),
            rules: AccountPolicy::from_settings(settings),
            clock: Arc::clone(&clock),
            mailer: Arc::clone(&mailer),
            sms: Arc::clone(&sms),
            templates: templates.clone(),
            limiter: limiter.clone(),
            send_limits: send_limits.clone(),
            secrets: secrets.clone(),
            lockout: lockout.clone(),
            captcha: captcha.clone(),
        };
        let admin = AdminService {
            db: db.clone(),
            clock: Arc::clone(&clock),
            passwords: passwords.clone(),
            policy,
            media: media.clone(),
            lockout: lockout.clone(),
        };
        let auth = AuthService {
            db: db.clone(),
            reader,
            passwords,
            tokens,
            kv: Arc::clone(&kv),
            clock: Arc::clone(&clock),
            mailer,
            sms,
            templates,
            limiter,
            send_limits,
            secrets,
            lockout,
            captcha,
            accounts: accounts.clone(),
            policy: AuthPolicy::from_settings(settings),
        };
        let social = SocialService {
            db: db.clone(),
            kv: Arc::clone(&kv),
            clock: Arc::clone(&clock),
            limiter: auth.limiter.clone(),
            auth: auth.clone(),
            providers: Arc::new(Providers::from_settings(settings)?),
            policy: SocialPolicy::from_settings(settings),
        };
        let audit = AuditLog::new(db.clone(), Arc::clone(&clock), settings);
        Ok(Self { accounts, admin, auth, audit, clock, kv, db, media, social, cookies })
    }
}

/// The token cipher when access tokens are encrypted.
fn token_cipher(settings: &Settings) -> AppResult<Option<TokenCipher>> {
    if settings.access_token_encryption == TokenEncryption::Off {
        return Ok(None);
    }
    let key = settings
        .token_encryption_key_bytes()
        .ok_or_else(|| AppError::internal("IDGATE_TOKEN_ENCRYPTION_KEY: must be 32 random bytes in base64"))?;
    tracing::info!("access tokens are encrypted (JWE dir + A256GCM)");
    TokenCipher::new(&key).map(Some)
}

/// Reloads the stored signing keys every `interval_secs`, so a rotation or retirement reaches
/// every instance without a restart. A failed reload keeps the keys in force and is retried.
fn spawn_key_reloading(store: keys::KeyStore, tokens: Arc<TokenService>, clock: Arc<dyn Clock>, interval_secs: u64) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(interval_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match store.ring(clock.now()).await {
                Ok(ring) => tokens.install(ring),
                Err(e) => tracing::warn!(error = %e, "could not reload the signing keys; keeping the current ones"),
            }
        }
    });
}

/// Redis when configured, else the database's own KV table (swept in the background).
async fn build_kv(settings: &Settings, db: &DatabaseConnection, clock: &Arc<dyn Clock>) -> AppResult<Arc<dyn Kv>> {
    if let Some(url) = &settings.redis_url {
        return Ok(Arc::new(RedisKv::connect(url.expose_secret(), &settings.redis_prefix).await?));
    }
    // On SQLite the KV's writes (a login makes four) get a connection of their own. One
    // writer at a time is all SQLite allows anyway; on a shared pool the writers wait for the
    // file lock in SQLite's busy loop, and every write makes the other connections reread
    // their cached pages. Nothing spans the KV and other tables in one transaction.
    let kv = Arc::new(match db.get_database_backend() {
        DbBackend::Sqlite => DatabaseKv::sqlite(settings.database_url.expose_secret(), Arc::clone(clock))?,
        _ => DatabaseKv::new(db.clone(), Arc::clone(clock)),
    });
    kv.spawn_sweeping(KV_SWEEP_INTERVAL);
    Ok(kv)
}

/// SMTP when configured, else the outbox directory.
async fn build_mailer(settings: &Settings) -> AppResult<Arc<dyn Mailer>> {
    if let Some(url) = &settings.smtp_url {
        let timeout = Duration::from_secs(settings.smtp_timeout_secs);
        tracing::info!("outgoing mail is sent over SMTP");
        return Ok(Arc::new(SmtpMailer::new(url.expose_secret(), &settings.mail_from, timeout)?));
    }
    let outbox = OutboxMailer::new(settings.outbox_dir.clone(), &settings.mail_from).await?;
    tracing::info!(dir = %outbox.dir().display(), "outgoing mail is written to the outbox directory");
    Ok(Arc::new(outbox))
}

/// The SMS gateway when configured, else the outbox directory.
async fn build_sms(settings: &Settings) -> AppResult<Arc<dyn SmsSender>> {
    match (&settings.sms_gateway_url, &settings.sms_account_sid, &settings.sms_auth_token) {
        (Some(url), Some(sid), Some(token)) => {
            tracing::info!(gateway = %url, "text messages are sent through the SMS gateway");
            Ok(Arc::new(TwilioSms::new(url, sid, token.clone(), &settings.sms_from, Duration::from_secs(10))?))
        }
        _ => {
            tracing::info!(dir = %settings.outbox_dir.display(), "text messages are written to the outbox directory");
            Ok(Arc::new(OutboxSms::new(settings.outbox_dir.clone())?))
        }
    }
}
