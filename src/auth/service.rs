//! Authentication rules.
//!
//! - Login checks the password (unknown users against a dummy hash, so both fail alike), then
//!   either grants a session or sends a one-time code (OWASP MFA Cheat Sheet).
//! - A challenge's code is a one-time secret (`security::one_time`): `otp_max_attempts` wrong
//!   tries, counted atomically so the bound holds under concurrent guesses, and single use.
//! - Refresh tokens rotate on every use; presenting the one just replaced revokes the session
//!   (OAuth 2.0 Security BCP, RFC 9700 §4.14.2), except within the configured grace period.
//! - Revocation is immediate: every access token check reads its session from the database.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, TransactionTrait};
use secrecy::ExposeSecret;
use serde_json::json;
use uuid::Uuid;

use super::{
    model::{AuthGrant, ChallengeView, LoginOutcome, OtpChannel, PendingChallenge, TokenInfo, TokenType},
    tokens::TokenService,
};
use crate::{
    accounts::service::AccountService,
    audit::{
        self,
        model::{AuditKind, NewAuditEvent},
    },
    client::ClientInfo,
    clock::Clock,
    config::{LoginOtp, Settings},
    db::Reader,
    domain::{Email, Password, Phone, Principal, Session, User, UserId},
    error::{AppError, AppResult},
    identities::{self, ExternalIdentity},
    kv::{Kv, Write},
    notify::{
        mail::Mailer,
        sms::{OutgoingSms, SmsSender},
        templates::{Message, Templates},
    },
    security::{
        captcha::{Action, Captcha},
        crypto::{constant_time_eq, random_token, sha256_hex},
        lockout::{Attempt, Lockout},
        one_time::OneTimeSecrets,
        passwords::Passwords,
        rate_limit::{RateLimiter, Rule},
        send_limits::SendLimits,
    },
    sessions::{
        self, EndReason,
        repo::{self, NewSession},
    },
    users::repo as users,
};

/// Pending challenges stay readable this long past expiry, to answer OTP_EXPIRED rather than
/// OTP_INVALID.
const EXPIRED_CHALLENGE_MEMORY: Duration = Duration::from_secs(3600);
/// Longer strings are no token of ours (an access token is well under 2 KB, encrypted too).
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Purpose of login codes; their subject is the challenge id.
const LOGIN_CODE: &str = "login";

/// The tunables of authentication, from settings.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    pub login_otp: LoginOtp,
    pub require_email_verification: bool,
    pub phone_signup: bool,
    pub product_name: String,
    pub otp_ttl: Duration,
    pub otp_max_attempts: u32,
    pub otp_resend_cooldown: Duration,
    pub otp_max_resends: u32,
    pub session_ttl: Duration,
    pub session_idle_timeout: Option<Duration>,
    pub refresh_reuse_grace: Duration,
    pub max_sessions: u32,
    pub login_per_ip: u32,
    pub login_per_email: u32,
    pub otp_per_ip: u32,
    pub refresh_per_ip: u32,
    pub token_info_per_ip: u32,
}

impl AuthPolicy {
    /// The rules as configured.
    pub fn from_settings(settings: &Settings) -> Self {
        let secs = Duration::from_secs;
        Self {
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
            max_sessions: settings.max_sessions_per_user,
            login_per_ip: settings.login_rate_per_ip,
            login_per_email: settings.login_rate_per_email,
            otp_per_ip: settings.otp_rate_per_ip,
            refresh_per_ip: settings.refresh_rate_per_ip,
            token_info_per_ip: settings.token_info_rate_per_ip,
        }
    }
}

/// Logins, challenges, sessions and tokens.
#[derive(Clone)]
pub struct AuthService {
    pub(crate) db: DatabaseConnection,
    /// Held connections for the reads on every request's path (no pool's ping after each).
    pub(crate) reader: Arc<Reader>,
    pub(crate) passwords: Passwords,
    pub(crate) tokens: Arc<TokenService>,
    pub(crate) kv: Arc<dyn Kv>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) mailer: Arc<dyn Mailer>,
    pub(crate) sms: Arc<dyn SmsSender>,
    pub(crate) templates: Templates,
    pub(crate) limiter: RateLimiter,
    pub(crate) send_limits: SendLimits,
    pub(crate) secrets: OneTimeSecrets,
    pub(crate) lockout: Lockout,
    pub(crate) captcha: Captcha,
    /// For the lock notice, which carries a password-reset link.
    pub(crate) accounts: AccountService,
    pub(crate) policy: AuthPolicy,
}

fn minute(name: &'static str, limit: u32) -> Rule {
    Rule { name, limit, window: Duration::from_secs(60) }
}

fn chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

impl AuthService {
    /// Checks email and password; grants a session or sends a code, as configured.
    ///
    /// Errors: INVALID_CREDENTIALS (unknown email or wrong password, indistinguishable),
    /// ACCOUNT_LOCKED (only after a correct password), ACCOUNT_INACTIVE (likewise),
    /// RATE_LIMITED.
    ///
    /// Lockout (`security::lockout`): while the account is locked, a correct password gets
    /// ACCOUNT_LOCKED and a wrong one INVALID_CREDENTIALS, counting nothing; otherwise each
    /// attempt reserves a slot before the password is verified, and the wrong password that
    /// fills the count locks the account.
    ///
    /// A correct password checked against a hash imported from Django is hashed again with
    /// argon2id and stored before the login goes on (whatever the account's state), so each
    /// imported hash serves one successful login at most.
    pub async fn login(
        &self,
        email: Email,
        password: Password,
        device_name: Option<String>,
        captcha_token: Option<&str>,
        client: &ClientInfo,
    ) -> AppResult<LoginOutcome> {
        let found = users::read_credentials(&self.reader, email.as_str()).await?;
        let (user, hash) = match found {
            Some(c) => (Some(c.user), c.password_hash),
            None => (None, None),
        };
        let now = self.clock.now();
        let locked_until = user.as_ref().and_then(|u| u.locked_at(now));
        let (per_ip, ip) = (minute("login-ip", self.policy.login_per_ip), client.ip_or_unknown());
        let mut limits = Vec::with_capacity(1);
        if self.captcha.is_off() {
            limits.push((per_ip, ip.as_str()));
        } else {
            // A CAPTCHA is checked after the address's count (which bounds calls to its
            // provider) and before the account's (which a client without one cannot spend).
            self.limiter.hit(per_ip, &ip).await?;
            self.captcha.check(Action::Login, captcha_token, client, Some(email.as_str())).await?;
        }
        // The address's count first (a refused address spends nothing of the account's), then
        // the account's cost cap and, unless it is locked, the attempt's reservation: one round
        // trip, so the account is read before anything is counted.
        let reserved = self.lockout.count_check(&limits, email.as_str(), locked_until.is_none()).await?;
        if let Some(until) = locked_until {
            return if self.passwords.verify(password.secret(), hash).await? {
                Err(AppError::AccountLocked { retry_after: seconds_until(now, until) })
            } else {
                Err(AppError::InvalidCredentials)
            };
        }
        let Some(Attempt::Verify { last }) = reserved else {
            // A parallel attempt is filling the count: answer as a wrong password, unverified.
            return Err(AppError::InvalidCredentials);
        };
        let imported = hash.clone().filter(|h| Passwords::needs_rehash(h));
        let matched = self.passwords.verify(password.secret(), hash).await?;
        // A correct password forgets the failures; stored with the login's own writes below.
        let mut forget_failures = Vec::new();
        if matched {
            forget_failures = self.lockout.clearing(email.as_str());
            if let (Some(imported), Some(user)) = (imported, &user) {
                self.rehash(user.id, &imported, &password).await?;
            }
        } else if let (true, Some(user)) = (last, &user) {
            self.lock(user, client).await?;
        }
        let refused = match &user {
            Some(_) if !matched => Some("wrong_password"),
            None => Some("unknown_account"),
            Some(user) if !user.is_active => Some("inactive"),
            // Checked only after the password, so it tells nothing to someone without it.
            Some(user) if self.policy.require_email_verification && user.email_verified_at.is_none() => {
                Some("email_not_verified")
            }
            Some(_) => None,
        };
        if let Some(reason) = refused {
            self.kv.write(&forget_failures).await?;
            if matches!(reason, "wrong_password" | "unknown_account") {
                self.captcha.record_failure(client, email.as_str()).await?;
            }
            let mut event = NewAuditEvent::new(AuditKind::LoginFailed, self.clock.now())
                .client(client)
                .detail(json!({ "reason": reason, "method": "password" }));
            if let Some(user) = &user {
                event = event.user(user.id).actor(Some(user.id));
            }
            audit::record(&self.db, event).await?;
            return Err(match reason {
                "inactive" => AppError::AccountInactive,
                "email_not_verified" => AppError::EmailNotVerified,
                _ => AppError::InvalidCredentials,
            });
        }
        let Some(user) = user else { return Err(AppError::InvalidCredentials) };
        match self.policy.login_otp {
            LoginOtp::Off => {
                self.kv.write(&forget_failures).await?;
                Ok(LoginOutcome::Granted(Box::new(
                    self.grant_session(user, device_name, client, Alongside::Nothing).await?,
                )))
            }
            LoginOtp::Email => {
                let target = ChallengeTarget::Email { user: user.id, email, link: None };
                let locale = user.locale.or_else(|| client.locale.clone());
                let challenge = self.start_challenge(target, locale, device_name, forget_failures).await?;
                Ok(LoginOutcome::ChallengeSent(challenge))
            }
        }
    }

    /// Replaces an imported (Django) hash that just proved `password` with idgate's argon2id,
    /// so the imported hash is gone after the first correct password. Only while `imported` is
    /// still stored: a password changed in between is kept.
    async fn rehash(&self, id: UserId, imported: &str, password: &Password) -> AppResult<()> {
        let hash = self.passwords.hash(password.secret()).await?;
        if users::replace_password_hash(&self.db, id, imported, hash).await? {
            tracing::info!(user = %id, "an imported password hash was replaced by argon2id");
        }
        Ok(())
    }

    /// Starts a passwordless login by SMS. Answers the same challenge whether or not the number
    /// has an account: for an unknown number (with phone signup off) no code is sent, and
    /// `verifyOtp` refuses every code as it refuses a wrong one.
    ///
    /// Errors: BAD_USER_INPUT (`phone`, including countries not allowed), RATE_LIMITED.
    pub async fn request_phone_login(
        &self,
        phone: Phone,
        device_name: Option<String>,
        captcha_token: Option<&str>,
        client: &ClientInfo,
    ) -> AppResult<ChallengeView> {
        self.captcha.check(Action::PhoneLogin, captcha_token, client, None).await?;
        self.send_limits.sms("sms-login", &phone, client).await?;
        let user = users::find_by_verified_phone(&self.db, phone.as_str()).await?;
        let (target, locale) = match user {
            Some(user) if user.is_active => (ChallengeTarget::Phone { user: Some(user.id), phone }, user.locale),
            Some(_) => (ChallengeTarget::Nobody { phone }, None),
            None if self.policy.phone_signup => (ChallengeTarget::Phone { user: None, phone }, None),
            None => (ChallengeTarget::Nobody { phone }, None),
        };
        let locale = locale.or_else(|| client.locale.clone());
        self.start_challenge(target, locale, device_name, Vec::new()).await
    }

    /// Completes a challenge with its code.
    ///
    /// Errors: BAD_USER_INPUT (not six digits), OTP_INVALID (wrong, unknown, used or dead;
    /// with the attempts left), OTP_EXPIRED, ACCOUNT_INACTIVE, RATE_LIMITED.
    pub async fn verify_otp(
        &self,
        challenge_id: &str,
        code: &str,
        device_name: Option<String>,
        client: &ClientInfo,
    ) -> AppResult<AuthGrant> {
        self.limiter.hit(minute("otp-ip", self.policy.otp_per_ip), &client.ip_or_unknown()).await?;
        let key = challenge_key(challenge_id)?;
        let challenge = self.read_challenge(&key).await?.ok_or(AppError::OtpInvalid { attempts_remaining: 0 })?;
        // Tries, expiry and single use are the code's business; the challenge only says for whom.
        let checked = self.secrets.verify_code::<()>(LOGIN_CODE, challenge_id, code).await;
        if let Err(error @ (AppError::OtpInvalid { .. } | AppError::OtpExpired)) = &checked {
            let mut event = NewAuditEvent::new(AuditKind::OtpFailed, self.clock.now())
                .client(client)
                .detail(json!({ "channel": challenge.channel, "error": error.code() }));
            if let Some(user) = challenge.user_id {
                event = event.user(UserId(user));
            }
            audit::record(&self.db, event).await?;
            self.count_code_failure(challenge.user_id, client).await?;
        }
        match checked {
            Ok(()) => self.kv.delete(&[&key]).await?,
            Err(dead @ AppError::OtpInvalid { attempts_remaining: 0 }) => {
                // Out of tries: the whole challenge dies, so a resend cannot revive it.
                self.kv.delete(&[&key]).await?;
                return Err(dead);
            }
            Err(other) => return Err(other),
        }
        let user = match (challenge.user_id, &challenge.signup_phone) {
            (Some(id), _) => users::find_by_id(&self.db, UserId(id)).await?,
            (None, Some(phone)) => Some(self.sign_up_by_phone(phone).await?),
            (None, None) => None,
        };
        let user = user.ok_or(AppError::OtpInvalid { attempts_remaining: 0 })?;
        if !user.is_active {
            return Err(AppError::AccountInactive);
        }
        let device_name = device_name.or(challenge.device_name);
        let Some(identity) = challenge.link else {
            return self.grant_session(user, device_name, client, Alongside::Nothing).await;
        };
        // Linking claims an account whose address was never verified (`identities::link_proven`).
        let claims = user.email_verified_at.is_none();
        let grant = self.grant_session(user, device_name, client, Alongside::LinkIdentity(&identity)).await?;
        if claims {
            self.accounts.mail_claim_notice(&grant.user, &identity.provider).await?;
        }
        Ok(grant)
    }

    /// Signs in the owner of an identity a provider just proved: a session, or first a mailed
    /// code when `code_first` (IDGATE_SOCIAL_LOGIN_OTP) and the account has an address.
    ///
    /// Errors: ACCOUNT_INACTIVE (audited as a refused login).
    pub async fn sign_in_with_identity(
        &self,
        user: User,
        identity: &ExternalIdentity,
        code_first: bool,
        device_name: Option<String>,
        client: &ClientInfo,
    ) -> AppResult<LoginOutcome> {
        if !user.is_active {
            let event = NewAuditEvent::new(AuditKind::LoginFailed, self.clock.now())
                .user(user.id)
                .actor(Some(user.id))
                .client(client)
                .detail(json!({ "reason": "inactive", "method": "social", "provider": identity.provider }));
            audit::record(&self.db, event).await?;
            return Err(AppError::AccountInactive);
        }
        let email = user.email.as_deref().map(Email::parse).transpose().ok().flatten();
        match email {
            Some(email) if code_first => {
                let locale = user.locale.clone().or_else(|| client.locale.clone());
                let target = ChallengeTarget::Email { user: user.id, email, link: None };
                Ok(LoginOutcome::ChallengeSent(self.start_challenge(target, locale, device_name, Vec::new()).await?))
            }
            _ => Ok(LoginOutcome::Granted(Box::new(
                self.grant_session(user, device_name, client, Alongside::TouchIdentity(identity)).await?,
            ))),
        }
    }

    /// Mails a code to `user`'s address; `verifyOtp` with it links `identity` (whose
    /// provider-verified address is the same) and signs in.
    ///
    /// Errors: DELIVERY_FAILED, SERVICE_UNAVAILABLE.
    pub async fn challenge_to_link(
        &self,
        user: &User,
        email: Email,
        identity: ExternalIdentity,
        device_name: Option<String>,
        client: &ClientInfo,
    ) -> AppResult<ChallengeView> {
        let locale = user.locale.clone().or_else(|| client.locale.clone());
        let target = ChallengeTarget::Email { user: user.id, email, link: Some(identity) };
        self.start_challenge(target, locale, device_name, Vec::new()).await
    }

    /// A wrong login code counts toward the same lock as a wrong password.
    async fn count_code_failure(&self, user: Option<Uuid>, client: &ClientInfo) -> AppResult<()> {
        let Some(id) = user else { return Ok(()) };
        let Some(user) = users::find_by_id(&self.db, UserId(id)).await? else { return Ok(()) };
        let Some(email) = user.email.as_deref() else { return Ok(()) };
        if self.lockout.failed(email).await? && user.locked_at(self.clock.now()).is_none() {
            self.lock(&user, client).await?;
        }
        Ok(())
    }

    /// Locks `user` for the next lock's length, records it and tells the owner.
    async fn lock(&self, user: &User, client: &ClientInfo) -> AppResult<()> {
        let now = self.clock.now();
        let duration = self.lockout.next_lock(user.id).await?;
        let until = now + chrono(duration);
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        users::set_locked_until(&txn, user.id, Some(until), now).await?;
        let event = NewAuditEvent::new(AuditKind::AccountLocked, now)
            .user(user.id)
            .client(client)
            .detail(json!({ "until": until.to_rfc3339(), "minutes": duration.as_secs() / 60 }));
        audit::record(&txn, event).await?;
        txn.commit().await.map_err(AppError::internal)?;
        tracing::warn!(user = %user.id, until = %until, "account locked after repeated failed logins");
        self.accounts.mail_lock_notice(user, until).await
    }

    /// Creates the account of a proven phone number (phone signup), or finds the one created
    /// by a concurrent signup of the same number.
    async fn sign_up_by_phone(&self, phone: &str) -> AppResult<User> {
        match users::insert_phone_user(&self.db, phone, self.clock.now()).await {
            Err(AppError::Conflict { .. }) => users::find_by_verified_phone(&self.db, phone)
                .await?
                .ok_or(AppError::OtpInvalid { attempts_remaining: 0 }),
            other => other,
        }
    }

    /// Sends a fresh code for a pending challenge; the previous code stops working.
    ///
    /// Errors: OTP_INVALID (unknown challenge), RATE_LIMITED (cooldown or resend cap).
    pub async fn resend_otp(&self, challenge_id: &str) -> AppResult<ChallengeView> {
        let key = challenge_key(challenge_id)?;
        let mut challenge = self.read_challenge(&key).await?.ok_or(AppError::OtpInvalid { attempts_remaining: 0 })?;
        let now = self.clock.now();
        if now < challenge.resend_available_at {
            return Err(AppError::RateLimited { retry_after: seconds_until(now, challenge.resend_available_at) });
        }
        if challenge.generation >= self.policy.otp_max_resends {
            return Err(AppError::RateLimited { retry_after: seconds_until(now, challenge.expires_at).max(60) });
        }
        // Of concurrent resends for the same generation, one wins; the others see the cooldown.
        let lock = format!("{key}:resend:{}", challenge.generation);
        if !self.kv.set_if_absent(&lock, "1", self.policy.otp_resend_cooldown.max(Duration::from_secs(1))).await? {
            return Err(AppError::RateLimited { retry_after: self.policy.otp_resend_cooldown.as_secs().max(1) });
        }
        challenge.generation += 1;
        // A new code replaces the old one, which dies, and gets its own tries.
        let (code, store_code) = self.secrets.new_code(LOGIN_CODE, challenge_id, &(), self.policy.otp_ttl)?;
        challenge.expires_at = now + chrono(self.policy.otp_ttl);
        challenge.resend_available_at = now + chrono(self.policy.otp_resend_cooldown);
        self.kv.write(&[self.challenge_write(key, &challenge)?, store_code]).await?;
        self.deliver(&challenge, code.expose_secret()).await?;
        Ok(view(challenge_id, &challenge))
    }

    /// Rotates a refresh token into a new grant.
    ///
    /// Errors: UNAUTHENTICATED (unknown, expired, revoked or reused token; reuse also revokes
    /// the session), RATE_LIMITED.
    pub async fn refresh(&self, refresh_token: &str, client: &ClientInfo) -> AppResult<AuthGrant> {
        self.limiter.hit(minute("refresh-ip", self.policy.refresh_per_ip), &client.ip_or_unknown()).await?;
        let (session_id, secret) = split_refresh_token(refresh_token)?;
        let presented = sha256_hex(secret.as_bytes());
        let record = repo::find_session(&self.db, session_id).await?.ok_or(AppError::Unauthenticated)?;
        let now = self.clock.now();
        if record.revoked {
            return Err(AppError::Unauthenticated);
        }
        if self.session_lapsed(&record.session, now) {
            self.revoke(session_id, "expired").await?;
            return Err(AppError::Unauthenticated);
        }
        if constant_time_eq(presented.as_bytes(), record.refresh_hash.as_bytes()) {
            let new_secret = random_token();
            if repo::rotate_refresh(&self.db, session_id, &presented, &sha256_hex(new_secret.as_bytes()), now).await? {
                let refresh_token = format!("{}.{new_secret}", session_id.simple());
                if !self.policy.refresh_reuse_grace.is_zero() {
                    self.kv.set(&grace_key(&presented), &refresh_token, self.policy.refresh_reuse_grace).await?;
                }
                let session = Session { last_used_at: now, ..record.session };
                return self.grant_for(session, refresh_token).await;
            }
            // Another refresh with the same token won the race: fall through as a reuse.
        } else if !record
            .previous_refresh_hash
            .as_deref()
            .is_some_and(|previous| constant_time_eq(presented.as_bytes(), previous.as_bytes()))
        {
            // Not this session's token at all: refuse without revoking, so a guess at a
            // session id cannot log its owner out.
            return Err(AppError::Unauthenticated);
        }
        if let Some(refresh_token) = self.kv.get(&grace_key(&presented)).await? {
            let session = Session { last_used_at: now, ..record.session };
            return self.grant_for(session, refresh_token).await;
        }
        tracing::warn!(session = %session_id, "refresh token reuse detected; session revoked");
        self.revoke(session_id, "refresh_reuse").await?;
        Err(AppError::Unauthenticated)
    }

    /// Resolves a bearer access token to its principal, refusing the tokens of sessions that
    /// are revoked, expired or unknown, and of inactive accounts.
    ///
    /// Errors: UNAUTHENTICATED.
    ///
    /// One query reads the session with its account, so the database is the truth for
    /// revocation on every instance and across restarts, and the account comes back with the
    /// principal (resolvers such as `me` need no second read). The principal's role is the
    /// account's role as it is now: the token's role claim is a hint for other services, so a
    /// demoted admin's token loses its power at once.
    pub async fn authenticate(&self, access_token: &str) -> AppResult<(Principal, User)> {
        let principal = self.tokens.verify(access_token)?;
        let standing = repo::read_session_standing(&self.reader, principal.session_id, principal.user_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if standing.revoked || !standing.user.is_active || self.clock.now() >= standing.expires_at {
            return Err(AppError::Unauthenticated);
        }
        Ok((Principal { role: standing.user.role, ..principal }, standing.user))
    }

    /// Whether a token (access or refresh) is live now, and what it stands for: the answer a
    /// resource server needs beyond the signature, since it sees revocation and deactivation.
    /// None for anything malformed, expired, foreign, revoked or of an inactive account.
    ///
    /// Errors: RATE_LIMITED (per client IP), and store failures (never reported as inactive).
    pub async fn token_info(&self, token: &str, client: &ClientInfo) -> AppResult<Option<TokenInfo>> {
        let rule = minute("token-info-ip", self.policy.token_info_per_ip);
        self.limiter.hit(rule, &client.ip_or_unknown()).await?;
        self.introspect(token).await
    }

    /// [`token_info`](Self::token_info) without a rate limit, for authenticated services.
    pub async fn introspect(&self, token: &str) -> AppResult<Option<TokenInfo>> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_BYTES {
            return Ok(None);
        }
        let found = match split_refresh_token(token) {
            Ok((session_id, secret)) => self.refresh_token_info(session_id, secret).await,
            Err(_) => self.access_token_info(token).await,
        };
        match found {
            Err(AppError::Unauthenticated) => Ok(None),
            other => other.map(Some),
        }
    }

    async fn access_token_info(&self, token: &str) -> AppResult<TokenInfo> {
        let claims = self.tokens.verify_claims(token)?;
        let (principal, _) = self.authenticate(token).await?;
        let at = |secs: i64| DateTime::from_timestamp(secs, 0).ok_or(AppError::Unauthenticated);
        Ok(TokenInfo {
            token_type: TokenType::Access,
            subject: principal.user_id,
            session_id: principal.session_id,
            role: principal.role,
            issued_at: at(claims.iat)?,
            expires_at: at(claims.exp)?,
        })
    }

    async fn refresh_token_info(&self, session_id: Uuid, secret: &str) -> AppResult<TokenInfo> {
        let record = repo::find_session(&self.db, session_id).await?.ok_or(AppError::Unauthenticated)?;
        let presented = sha256_hex(secret.as_bytes());
        let now = self.clock.now();
        if !constant_time_eq(presented.as_bytes(), record.refresh_hash.as_bytes())
            || record.revoked
            || self.session_lapsed(&record.session, now)
        {
            return Err(AppError::Unauthenticated);
        }
        let standing = repo::session_standing(&self.db, session_id, record.session.user_id)
            .await?
            .filter(|s| s.user.is_active)
            .ok_or(AppError::Unauthenticated)?;
        Ok(TokenInfo {
            token_type: TokenType::Refresh,
            subject: record.session.user_id,
            session_id,
            role: standing.user.role,
            issued_at: record.rotated_at,
            expires_at: record.session.expires_at,
        })
    }

    /// Revokes the caller's session, named by its access token or by a refresh token.
    ///
    /// Errors: UNAUTHENTICATED when neither identifies a live session.
    pub async fn logout(&self, caller: Option<Principal>, refresh_token: Option<&str>) -> AppResult<()> {
        let session_id = match (caller, refresh_token) {
            (_, Some(token)) => {
                let (session_id, secret) = split_refresh_token(token)?;
                let record = repo::find_session(&self.db, session_id).await?.ok_or(AppError::Unauthenticated)?;
                let presented = sha256_hex(secret.as_bytes());
                if !constant_time_eq(presented.as_bytes(), record.refresh_hash.as_bytes()) {
                    return Err(AppError::Unauthenticated);
                }
                session_id
            }
            (Some(principal), None) => principal.session_id,
            (None, None) => return Err(AppError::Unauthenticated),
        };
        if !self.revoke(session_id, "logout").await? {
            return Err(AppError::Unauthenticated);
        }
        Ok(())
    }

    /// Revokes every live session of the caller, in one transaction; returns how many.
    pub async fn logout_all(&self, caller: Principal) -> AppResult<u64> {
        let now = self.clock.now();
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        let event = NewAuditEvent::new(AuditKind::SessionRevoked, now)
            .user(caller.user_id)
            .actor(Some(caller.user_id))
            .detail(json!({ "reason": "logout_all" }));
        let ended = sessions::end_all(&txn, caller.user_id, None, "logout_all", now, event).await?;
        txn.commit().await.map_err(AppError::internal)?;
        Ok(ended as u64)
    }

    /// Revokes one of the caller's own sessions.
    ///
    /// Errors: NOT_FOUND when it is not the caller's live session.
    pub async fn revoke_session(&self, caller: Principal, session_id: Uuid) -> AppResult<()> {
        let record = repo::find_session(&self.db, session_id).await?;
        match record {
            Some(r) if r.session.user_id == caller.user_id && !r.revoked => {
                self.revoke(session_id, "revoked_by_user").await?;
                Ok(())
            }
            _ => Err(AppError::NotFound("session")),
        }
    }

    /// A user's live sessions, most recently used first.
    pub async fn sessions_of(&self, user: UserId) -> AppResult<Vec<Session>> {
        let now = self.clock.now();
        let sessions = repo::live_sessions(&self.db, user, now).await?;
        Ok(sessions.into_iter().filter(|s| !self.session_lapsed(s, now)).collect())
    }

    /// Lifetime of access tokens, in seconds.
    pub fn access_token_ttl(&self) -> u64 {
        self.tokens.ttl_secs()
    }

    fn session_lapsed(&self, session: &Session, now: DateTime<Utc>) -> bool {
        let idle = self.policy.session_idle_timeout.is_some_and(|idle| now - session.last_used_at > chrono(idle));
        now >= session.expires_at || idle
    }

    /// Marks a session revoked in the database and in the KV (for its live access tokens).
    async fn revoke(&self, session_id: Uuid, reason: EndReason) -> AppResult<bool> {
        sessions::end_one(&self.db, session_id, reason, self.clock.now()).await
    }

    /// Opens a session for `user` and issues its tokens, in one transaction with the login
    /// stamp and what `alongside` asks for.
    async fn grant_session(
        &self,
        user: User,
        device_name: Option<String>,
        client: &ClientInfo,
        alongside: Alongside<'_>,
    ) -> AppResult<AuthGrant> {
        let now = self.clock.now();
        let secret = random_token();
        let id = Uuid::new_v4();
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        // The first write locks the account's row until commit, so concurrent logins of one
        // account make room under the session limit one after another.
        users::record_login(&txn, user.id, now).await?;
        // Before the session opens: a claim ends every session the account had.
        let mut detail = json!({ "session": id.to_string() });
        match alongside {
            Alongside::Nothing => {}
            Alongside::TouchIdentity(identity) => {
                identities::repo::touch(&txn, identity, now).await?;
                detail = json!({ "session": id.to_string(), "method": "social", "provider": identity.provider });
            }
            Alongside::LinkIdentity(identity) => {
                identities::link_proven(&txn, &user, identity, client, now).await?;
                detail = json!({ "session": id.to_string(), "method": "social", "provider": identity.provider });
            }
        }
        sessions::make_room(&txn, user.id, self.policy.max_sessions, now).await?;
        let session = repo::insert_session(
            &txn,
            NewSession {
                id,
                user_id: user.id,
                refresh_hash: sha256_hex(secret.as_bytes()),
                device_name,
                user_agent: client.user_agent.clone(),
                ip: client.ip_text(),
                now,
                expires_at: now + chrono(self.policy.session_ttl),
            },
        )
        .await?;
        let event = NewAuditEvent::new(AuditKind::LoginSucceeded, now)
            .user(user.id)
            .actor(Some(user.id))
            .client(client)
            .detail(detail);
        audit::record(&txn, event).await?;
        // A link may have changed the account (a claim verifies its address): answer it as stored.
        let user = match alongside {
            Alongside::LinkIdentity(_) => users::find_by_id(&txn, user.id).await?.ok_or(AppError::Unauthenticated)?,
            _ => user,
        };
        txn.commit().await.map_err(AppError::internal)?;
        let user = User { last_login_at: Some(now), ..user };
        let access_token = self.tokens.issue(user.id, id, user.role)?;
        Ok(AuthGrant {
            access_token,
            refresh_token: format!("{}.{secret}", id.simple()),
            expires_in: self.tokens.ttl_secs(),
            user,
            session,
        })
    }

    async fn grant_for(&self, session: Session, refresh_token: String) -> AppResult<AuthGrant> {
        let user = users::find_by_id(&self.db, session.user_id).await?.ok_or(AppError::Unauthenticated)?;
        if !user.is_active {
            self.revoke(session.id, "inactive").await?;
            return Err(AppError::Unauthenticated);
        }
        let access_token = self.tokens.issue(user.id, session.id, user.role)?;
        Ok(AuthGrant { access_token, refresh_token, expires_in: self.tokens.ttl_secs(), user, session })
    }

    /// Stores a challenge and its code, with `also` (the caller's own writes) in the same round
    /// trip, and sends the code.
    async fn start_challenge(
        &self,
        target: ChallengeTarget,
        locale: Option<String>,
        device_name: Option<String>,
        also: Vec<Write>,
    ) -> AppResult<ChallengeView> {
        let challenge_id = random_token();
        let now = self.clock.now();
        let (channel, to, destination, user_id, signup_phone, link) = match target {
            ChallengeTarget::Email { user, email, link } => {
                (OtpChannel::Email, Some(email.as_str().to_owned()), email.masked(), Some(user.0), None, link)
            }
            ChallengeTarget::Phone { user, phone } => {
                let signup = user.is_none().then(|| phone.as_str().to_owned());
                (OtpChannel::Sms, Some(phone.as_str().to_owned()), phone.masked(), user.map(|u| u.0), signup, None)
            }
            ChallengeTarget::Nobody { phone } => (OtpChannel::Sms, None, phone.masked(), None, None, None),
        };
        let challenge = PendingChallenge {
            user_id,
            signup_phone,
            channel,
            to,
            destination,
            locale,
            generation: 0,
            expires_at: now + chrono(self.policy.otp_ttl),
            resend_available_at: now + chrono(self.policy.otp_resend_cooldown),
            device_name,
            link,
        };
        let (code, store_code) = self.secrets.new_code(LOGIN_CODE, &challenge_id, &(), self.policy.otp_ttl)?;
        let mut writes = also;
        writes.extend([self.challenge_write(challenge_key(&challenge_id)?, &challenge)?, store_code]);
        self.kv.write(&writes).await?;
        self.deliver(&challenge, code.expose_secret()).await?;
        Ok(view(&challenge_id, &challenge))
    }

    /// Sends the code by the challenge's channel; a challenge for nobody sends nothing.
    async fn deliver(&self, challenge: &PendingChallenge, code: &str) -> AppResult<()> {
        let Some(to) = &challenge.to else { return Ok(()) };
        let product = &self.policy.product_name;
        let minutes = self.policy.otp_ttl.as_secs().div_ceil(60);
        let locale = challenge.locale.as_deref();
        match challenge.channel {
            OtpChannel::Email => {
                let mail = self.templates.render(Message::LoginCode { product, code, minutes }, locale, to)?;
                self.mailer.send(mail).await
            }
            OtpChannel::Sms => {
                let body = self.templates.render_sms(Message::PhoneCode { product, code, minutes }, locale)?;
                self.sms.send(OutgoingSms { to: to.clone(), body }).await
            }
        }
    }

    async fn read_challenge(&self, key: &str) -> AppResult<Option<PendingChallenge>> {
        let Some(raw) = self.kv.get(key).await? else { return Ok(None) };
        serde_json::from_str(&raw).map(Some).map_err(AppError::internal)
    }

    fn challenge_write(&self, key: String, challenge: &PendingChallenge) -> AppResult<Write> {
        let value = serde_json::to_string(challenge).map_err(AppError::internal)?;
        Ok(Write::Set { key, value, ttl: self.policy.otp_ttl + EXPIRED_CHALLENGE_MEMORY })
    }
}

/// What a session grant does besides opening the session, in the same transaction.
#[derive(Clone, Copy)]
enum Alongside<'a> {
    Nothing,
    /// A sign-in with a linked identity: note its use.
    TouchIdentity(&'a ExternalIdentity),
    /// A mailed code proved the address of this identity: link it (and claim the account when
    /// its address was never verified).
    LinkIdentity(&'a ExternalIdentity),
}

/// Whom a login challenge is for.
enum ChallengeTarget {
    /// A login of `user` finished by a code mailed to `email`; with `link`, completing it links
    /// that provider identity.
    Email { user: UserId, email: Email, link: Option<ExternalIdentity> },
    /// A passwordless login by SMS: an existing account, or (no user) a signup.
    Phone { user: Option<UserId>, phone: Phone },
    /// A number with no account and signup off: the challenge exists but nothing is sent.
    Nobody { phone: Phone },
}

fn view(challenge_id: &str, challenge: &PendingChallenge) -> ChallengeView {
    ChallengeView {
        challenge_id: challenge_id.to_owned(),
        channel: challenge.channel,
        destination: challenge.destination.clone(),
        expires_at: challenge.expires_at,
        resend_available_at: challenge.resend_available_at,
    }
}

/// The KV key of a challenge; refuses ids that cannot be ours before touching the KV.
fn challenge_key(challenge_id: &str) -> AppResult<String> {
    let plausible =
        challenge_id.len() == 43 && challenge_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plausible {
        return Err(AppError::OtpInvalid { attempts_remaining: 0 });
    }
    Ok(format!("otp:{challenge_id}"))
}

fn grace_key(presented_hash: &str) -> String {
    format!("refresh-grace:{presented_hash}")
}

fn seconds_until(now: DateTime<Utc>, then: DateTime<Utc>) -> u64 {
    u64::try_from((then - now).num_seconds()).unwrap_or(0).max(1)
}

/// Splits `<session id>.<secret>`; anything else is UNAUTHENTICATED.
fn split_refresh_token(token: &str) -> AppResult<(Uuid, &str)> {
    let (id, secret) = token.trim().split_once('.').ok_or(AppError::Unauthenticated)?;
    let id = Uuid::try_parse(id).map_err(|_| AppError::Unauthenticated)?;
    if secret.len() != 43 {
        return Err(AppError::Unauthenticated);
    }
    Ok((id, secret))
}
