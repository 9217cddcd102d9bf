//! Account rules: registration, reading users, and (in the submodules) proving an email or a
//! phone and recovering or changing a password.
//!
//! Nothing here tells a stranger whether an address has an account (OWASP Authentication Cheat
//! Sheet, "Account enumeration"): registering a taken address answers like a new one, after the
//! same hashing work, and its owner is told by mail; requests for verification or reset mail
//! answer the same for every address and send (in the background) only where there is an
//! account.

mod email;
mod password;
mod phone;
mod profile;

pub use profile::ProfileUpdate;

use std::{sync::Arc, time::Duration};

use sea_orm::{DatabaseConnection, TransactionTrait};
use serde_json::json;

use crate::users::repo;
use crate::{
    audit::{
        self,
        model::{AuditKind, NewAuditEvent},
    },
    client::ClientInfo,
    clock::Clock,
    config::Settings,
    domain::{Email, NewUser, Password, Role, User, UserId},
    error::{AppError, AppResult},
    notify::{
        mail::Mailer,
        sms::SmsSender,
        templates::{Message, Templates},
    },
    security::{
        captcha::{Action, Captcha},
        lockout::Lockout,
        one_time::OneTimeSecrets,
        password_policy::PasswordPolicy,
        passwords::Passwords,
        rate_limit::{RateLimiter, Rule},
        send_limits::SendLimits,
    },
};

/// Tunables of the account flows, from settings.
#[derive(Debug, Clone)]
pub struct AccountPolicy {
    pub product_name: String,
    pub register_per_ip: u32,
    pub email_verification_ttl: Duration,
    pub password_reset_ttl: Duration,
    pub phone_code_ttl: Duration,
    /// Where email-verification links point; `?token=` is appended.
    pub verify_email_link: String,
    /// Where password-reset links point; `?token=` is appended.
    pub reset_password_link: String,
}

impl AccountPolicy {
    /// The rules as configured; links default to idgate's own landing pages.
    pub fn from_settings(settings: &Settings) -> Self {
        let public = settings.issuer();
        let secs = Duration::from_secs;
        Self {
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
        }
    }
}

/// What the account service needs from the application.
#[derive(Clone)]
pub struct AccountService {
    pub(crate) db: DatabaseConnection,
    pub(crate) passwords: Passwords,
    pub(crate) policy: PasswordPolicy,
    pub(crate) rules: AccountPolicy,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) mailer: Arc<dyn Mailer>,
    pub(crate) sms: Arc<dyn SmsSender>,
    pub(crate) templates: Templates,
    pub(crate) limiter: RateLimiter,
    pub(crate) send_limits: SendLimits,
    pub(crate) secrets: OneTimeSecrets,
    pub(crate) lockout: Lockout,
    pub(crate) captcha: Captcha,
}

impl AccountService {
    /// Registers a user and mails the verification link and code; for a taken email, answers as
    /// if it had registered and mails the owner a notice instead.
    ///
    /// Errors: BAD_USER_INPUT (password policy), CONFLICT on a taken username, RATE_LIMITED,
    /// INTERNAL when the mail cannot be sent (the account then exists; a new verification mail
    /// can be requested).
    pub async fn register(&self, new: NewUser, captcha_token: Option<&str>, client: &ClientInfo) -> AppResult<User> {
        let rule = Rule { name: "register-ip", limit: self.rules.register_per_ip, window: Duration::from_secs(3600) };
        self.limiter.hit(rule, &client.ip_or_unknown()).await?;
        self.captcha.check(Action::Register, captcha_token, client, Some(new.email.as_str())).await?;
        self.check_policy(new.password.expose(), &new.personal_words(), "password")?;
        // A username is public, so a taken one may be reported; checked before the email so
        // that the answer never depends on whether the email exists.
        if let Some(username) = &new.username
            && repo::username_taken(&self.db, username.as_str()).await?
        {
            return Err(AppError::Conflict { field: "username" });
        }
        let hash = self.passwords.hash(new.password.secret()).await?;
        let mut draft = User::draft(&new, Role::User, self.clock.now());
        // A new account speaks the language its browser asked for until the user says otherwise.
        draft.locale = client.locale.clone();
        match self.insert_recorded(&draft, hash, client).await {
            Err(AppError::Conflict { field: "email" }) => {
                let product = &self.rules.product_name;
                let locale = client.locale.as_deref();
                let notice =
                    self.templates.render(Message::RegistrationAttempt { product }, locale, new.email.as_str())?;
                self.mailer.send(notice).await?;
                Ok(draft)
            }
            Ok(user) => {
                self.send_email_verification(&user, &new.email).await?;
                Ok(user)
            }
            Err(other) => Err(other),
        }
    }

    /// Inserts a registered user with its REGISTERED audit event, in one transaction.
    async fn insert_recorded(&self, draft: &User, password_hash: String, client: &ClientInfo) -> AppResult<User> {
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        let user = repo::insert(&txn, draft, Some(password_hash)).await?;
        let event = NewAuditEvent::new(AuditKind::Registered, user.created_at)
            .user(user.id)
            .actor(Some(user.id))
            .client(client);
        audit::record(&txn, event).await?;
        txn.commit().await.map_err(AppError::internal)?;
        Ok(user)
    }

    /// The user with `id`.
    ///
    /// Errors: NOT_FOUND.
    pub async fn get(&self, id: UserId) -> AppResult<User> {
        repo::find_by_id(&self.db, id).await?.ok_or(AppError::NotFound("user"))
    }

    /// Creates a superuser (email verified: an operator vouches for it), or with `promote`
    /// raises an existing account to superuser.
    ///
    /// Errors: CONFLICT when the email exists and `promote` is false; BAD_USER_INPUT (policy).
    pub async fn create_superuser(&self, email: Email, password: Password, promote: bool) -> AppResult<User> {
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        let now = self.clock.now();
        if let Some(existing) = repo::find_credentials(&txn, email.as_str()).await? {
            if !promote {
                return Err(AppError::Conflict { field: "email" });
            }
            repo::set_role(&txn, existing.user.id, Role::Superuser, now).await?;
            let event = NewAuditEvent::new(AuditKind::RoleChanged, now)
                .user(existing.user.id)
                .detail(json!({ "from": existing.user.role.as_str(), "to": "SUPERUSER", "via": "cli" }));
            audit::record(&txn, event).await?;
            txn.commit().await.map_err(AppError::internal)?;
            return self.get(existing.user.id).await;
        }
        self.check_policy(password.expose(), &[email.local_part()], "password")?;
        let new = NewUser {
            email,
            password,
            username: None,
            first_name: None,
            last_name: None,
            phone: None,
            date_of_birth: None,
            gender: None,
        };
        let hash = self.passwords.hash(new.password.secret()).await?;
        let mut draft = User::draft(&new, Role::Superuser, now);
        draft.email_verified_at = Some(now);
        let user = repo::insert(&txn, &draft, Some(hash)).await?;
        let event = NewAuditEvent::new(AuditKind::UserCreated, now)
            .user(user.id)
            .detail(json!({ "role": "SUPERUSER", "via": "cli" }));
        audit::record(&txn, event).await?;
        txn.commit().await.map_err(AppError::internal)?;
        Ok(user)
    }

    /// Applies the password policy; `field` names the input in the error.
    fn check_policy(&self, password: &str, personal: &[&str], field: &'static str) -> AppResult<()> {
        self.policy.check(password, personal).map_err(|reason| AppError::bad_input(field, format!("password {reason}")))
    }

    /// Sends `mail` in the background, for answers that must not depend on whether it is sent.
    fn send_later(&self, mail: crate::notify::mail::OutgoingMail) {
        let mailer = Arc::clone(&self.mailer);
        tokio::spawn(async move {
            if let Err(e) = mailer.send(mail).await {
                tracing::error!(error = %e, "could not send a mail");
            }
        });
    }
}

/// The user's own words a new password must not contain.
fn personal_words(user: &User) -> Vec<&str> {
    let mut words: Vec<&str> = Vec::new();
    if let Some(email) = user.email.as_deref() {
        words.push(email);
        words.extend(email.split('@').next());
    }
    words.extend(user.username.as_deref());
    words.extend(user.first_name.as_deref());
    words.extend(user.last_name.as_deref());
    words
}
