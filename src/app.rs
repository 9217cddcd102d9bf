//! The one bootstrap path: settings -> database (migrated), KV, mailer, clock, keys -> services
//! -> schema -> router. `main` and every test go through [`App::build`].

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::{
    accounts::service::{AccountPolicy, AccountService},
    admin::service::AdminService,
    audit::service::AuditLog,
    auth::{
        keys,
        service::{AuthPolicy, AuthService},
        tokens::TokenService,
    },
    clock::{Clock, SystemClock},
    config::Settings,
    db,
    error::{AppError, AppResult},
    graphql::{self, IdgateSchema},
    http::{self, HttpState},
    kv::{DatabaseKv, Kv, RedisKv},
    media::service::MediaService,
    notify::{
        mail::{Mailer, OutboxMailer, SmtpMailer},
        sms::{OutboxSms, SmsSender, TwilioSms},
        templates::Templates,
    },
    security::{
        codes::CodeHasher,
        hash_pool::HashPool,
        one_time::OneTimeSecrets,
        password_policy::PasswordPolicy,
        passwords::{HashCost, Passwords},
        rate_limit::RateLimiter,
        send_limits::SendLimits,
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
}

impl Services {
    /// Connects, migrates and wires every service.
    pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> AppResult<Self> {
        let url = settings.database_url.expose_secret();
        db::migrate(url).await?;
        let db = db::connect(url, settings.database_max_connections).await?;
        let kv: Arc<dyn Kv> = match &settings.redis_url {
            Some(url) => Arc::new(RedisKv::connect(url.expose_secret(), &settings.redis_prefix).await?),
            None => {
                let kv = Arc::new(DatabaseKv::new(db.clone(), Arc::clone(&clock)));
                kv.spawn_sweeping(KV_SWEEP_INTERVAL);
                kv
            }
        };
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
        let cost = HashCost {
            memory_kib: settings.argon2_memory_kib,
            iterations: settings.argon2_iterations,
            parallelism: settings.argon2_parallelism,
        };
        let passwords = Passwords::new(cost, pool).await?;
        let signing_key = keys::load_signing_key(&db, settings, clock.as_ref()).await?;
        let code_secret = keys::load_code_secret(&db, settings, clock.as_ref()).await?;
        let tokens = Arc::new(TokenService::new(
            signing_key,
            settings.issuer(),
            &settings.token_audience,
            settings.access_token_ttl_secs,
            Arc::clone(&clock),
            settings.token_cache_capacity,
        ));
        let secs = Duration::from_secs;
        let secrets = OneTimeSecrets::new(
            Arc::clone(&kv),
            Arc::clone(&clock),
            CodeHasher::new(code_secret),
            settings.otp_max_attempts,
        );
        let limiter = RateLimiter::new(Arc::clone(&kv), Arc::clone(&clock));
        let send_limits = SendLimits {
            limiter: limiter.clone(),
            cooldown: secs(settings.otp_resend_cooldown_secs),
            per_address_per_day: settings.messages_per_address_per_day,
            sms_per_ip_per_hour: settings.sms_rate_per_ip,
            sms_countries: settings.sms_allowed_country_list(),
        };
        let public = settings.issuer();
        let accounts = AccountService {
            db: db.clone(),
            passwords: passwords.clone(),
            policy: PasswordPolicy {
                min_length: settings.password_min_length,
                min_score: settings.password_min_score,
                product_name: settings.product_name.clone(),
            },
            rules: AccountPolicy {
                product_name: settings.product_name.clone(),
                register_per_ip: settings.register_rate_per_ip,
                email_verification_ttl: secs(settings.email_verification_ttl_secs),
                password_reset_ttl: secs(settings.password_reset_ttl_secs),
                phone_code_ttl: secs(settings.otp_ttl_secs),
                verify_email_link: settings
                    .frontend_verify_email_url
                    .clone()
                    .unwrap_or_else(|| format!("{public}/verify-email")),
                reset_password_link: settings
                    .frontend_reset_password_url
                    .clone()
                    .unwrap_or_else(|| format!("{public}/reset-password")),
            },
            clock: Arc::clone(&clock),
            mailer: Arc::clone(&mailer),
            sms: Arc::clone(&sms),
            templates: templates.clone(),
            limiter: limiter.clone(),
            send_limits: send_limits.clone(),
            secrets: secrets.clone(),
        };
        let admin = AdminService {
            db: db.clone(),
            clock: Arc::clone(&clock),
            passwords: passwords.clone(),
            policy: accounts.policy.clone(),
            media: media.clone(),
        };
        let auth = AuthService {
            db: db.clone(),
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
            policy: AuthPolicy {
                login_otp: settings.login_otp,
                require_email_verification: settings.require_email_verification,
                phone_signup: settings.phone_signup,
                product_name: settings.product_name.clone(),
                otp_ttl: secs(settings.otp_ttl_secs),
                otp_max_attempts: settings.otp_max_attempts,
                otp_resend_cooldown: secs(settings.otp_resend_cooldown_secs),
                otp_max_resends: settings.otp_max_resends,
                session_ttl: secs(settings.session_ttl_secs),
                session_idle_timeout: (settings.session_idle_timeout_secs > 0)
                    .then(|| secs(settings.session_idle_timeout_secs)),
                refresh_reuse_grace: secs(settings.refresh_reuse_grace_secs),
                login_per_ip: settings.login_rate_per_ip,
                login_per_email: settings.login_rate_per_email,
                otp_per_ip: settings.otp_rate_per_ip,
                refresh_per_ip: settings.refresh_rate_per_ip,
            },
        };
        let audit = AuditLog {
            db: db.clone(),
            clock: Arc::clone(&clock),
            retention: (settings.audit_retention_days > 0).then(|| secs(settings.audit_retention_days * 24 * 3600)),
        };
        Ok(Self { accounts, admin, auth, audit, clock, kv, db, media })
    }
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

/// A built application, bound to its port and ready to serve.
pub struct App {
    listener: TcpListener,
    router: Router,
    shutdown_grace: Duration,
}

impl App {
    /// Builds the application on the system clock.
    pub async fn build(settings: Settings) -> AppResult<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Builds the application on the given clock (a manual clock lets tests move time).
    pub async fn build_with_clock(mut settings: Settings, clock: Arc<dyn Clock>) -> AppResult<Self> {
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| AppError::internal(format!("cannot listen on {}: {e}", settings.listen)))?;
        if settings.public_url_from_listen {
            let bound = listener.local_addr().map_err(AppError::internal)?;
            settings.use_listen_address(bound);
        }
        let services = Services::build(&settings, clock).await?;
        services.audit.spawn_pruning();
        let schema: IdgateSchema = graphql::build_schema(services.clone(), &settings);
        let router = http::router(HttpState {
            schema,
            services,
            max_body_bytes: settings.max_body_bytes,
            depth_limits: graphql::depth_limits(&settings),
            cors_origins: settings.cors_origin_list().into_iter().filter_map(|o| o.parse().ok()).collect(),
        });
        Ok(Self { listener, router, shutdown_grace: Duration::from_secs(settings.shutdown_grace_secs) })
    }

    /// The bound port (useful when listening on port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The routes, for in-process use.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests (bounded by the
    /// shutdown grace period).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then drains as `run_until_stopped` does.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let grace = self.shutdown_grace;
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(self.listener, service).with_graceful_shutdown(async move {
            stop.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stopping_tx.send(());
        });
        let drained = async {
            // Once stopping, in-flight requests get `grace` to finish.
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            result = server => result,
            () = drained => {
                tracing::warn!("shutdown grace period over; dropping remaining requests");
                Ok(())
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
