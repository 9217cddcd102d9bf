//! Recovering and changing a password. A reset starts with a mail holding a link and a code;
//! the code can be traded for a short-lived reset token (the three-step flow of the Django
//! projects idgate replaces), and either token sets a new password once. A new password ends
//! every session (a reset) or every other session (a change), and the owner is told by mail.

use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AccountService, personal_words};
use crate::{
    audit::{
        self,
        model::{AuditKind, NewAuditEvent},
    },
    client::ClientInfo,
    domain::{Email, Password, User, UserId},
    error::{AppError, AppResult},
    notify::templates::Message,
    security::captcha::Action,
    security::crypto::sha256_hex,
    sessions::{self, EndReason},
    users::repo,
};

/// Purpose of reset tokens (from the link, or from the code step).
const RESET_TOKEN: &str = "reset-password";
/// Purpose of the mailed reset code.
const RESET_CODE: &str = "reset-password-code";

#[derive(Serialize, Deserialize)]
struct ResetProof {
    user: Uuid,
}

impl AccountService {
    /// Mails a reset link and code to the address if it has an active account. Answers the
    /// same for every address.
    ///
    /// Errors: RATE_LIMITED (a cooldown and a daily cap per address, counted for every address).
    pub async fn request_password_reset(
        &self,
        email: &Email,
        captcha_token: Option<&str>,
        client: &ClientInfo,
    ) -> AppResult<()> {
        // The CAPTCHA first: a request without one must not use up the address's cooldown.
        self.captcha.check(Action::PasswordReset, captcha_token, client, Some(email.as_str())).await?;
        self.send_limits.mail(RESET_CODE, &sha256_hex(email.as_str().as_bytes())).await?;
        let Some(found) = repo::find_credentials(&self.db, email.as_str()).await? else { return Ok(()) };
        if !found.user.is_active {
            return Ok(());
        }
        let proof = ResetProof { user: found.user.id.0 };
        let ttl = self.rules.password_reset_ttl;
        let code = self.secrets.issue_code(RESET_CODE, email.as_str(), &proof, ttl).await?;
        let token = self.secrets.issue_token(RESET_TOKEN, &proof, ttl).await?;
        let link = format!("{}?token={token}", self.rules.reset_password_link);
        let message = Message::PasswordReset {
            product: &self.rules.product_name,
            code: secrecy::ExposeSecret::expose_secret(&code),
            link: &link,
            minutes: ttl.as_secs().div_ceil(60),
        };
        let mail = self.templates.render(message, found.user.locale.as_deref(), email.as_str())?;
        self.send_later(mail);
        Ok(())
    }

    /// Tells the owner of a just-locked account when it unlocks, with a reset link that unlocks
    /// it at once (their way back in while an attacker keeps guessing). Sent in the background:
    /// the lock holds whether or not the mail goes out.
    pub async fn mail_lock_notice(&self, user: &User, until: DateTime<Utc>) -> AppResult<()> {
        let Some(email) = user.email.as_deref() else { return Ok(()) };
        let ttl = self.rules.password_reset_ttl;
        let token = self.secrets.issue_token(RESET_TOKEN, &ResetProof { user: user.id.0 }, ttl).await?;
        let link = format!("{}?token={token}", self.rules.reset_password_link);
        let until = until.format("%Y-%m-%d %H:%M UTC").to_string();
        let message = Message::AccountLocked {
            product: &self.rules.product_name,
            until: &until,
            link: &link,
            minutes: ttl.as_secs().div_ceil(60),
        };
        let mail = self.templates.render(message, user.locale.as_deref(), email)?;
        self.send_later(mail);
        Ok(())
    }

    /// Tells the owner of a claimed account what the claim removed (`identities::link_proven`).
    pub async fn mail_claim_notice(&self, user: &User, provider: &str) -> AppResult<()> {
        let Some(email) = user.email.as_deref() else { return Ok(()) };
        let message = Message::AccountClaimed { product: &self.rules.product_name, provider };
        let mail = self.templates.render(message, user.locale.as_deref(), email)?;
        self.send_later(mail);
        Ok(())
    }

    /// Trades a mailed reset code for a single-use reset token; returns it with its expiry.
    ///
    /// Errors: OTP_INVALID (also for an address without an account), OTP_EXPIRED,
    /// BAD_USER_INPUT (`code`).
    pub async fn verify_password_reset_code(&self, email: &Email, code: &str) -> AppResult<(String, DateTime<Utc>)> {
        let proof: ResetProof = self.secrets.verify_code(RESET_CODE, email.as_str(), code).await?;
        let ttl = self.rules.password_reset_ttl;
        let token = self.secrets.issue_token(RESET_TOKEN, &proof, ttl).await?;
        let expires_at = self.clock.now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        Ok((token, expires_at))
    }

    /// Sets a new password with a reset token, ends every session of the user and tells them.
    /// A password the policy refuses does not spend the token.
    ///
    /// Errors: BAD_USER_INPUT (`token` unknown, used, expired or of another purpose;
    /// `newPassword` refused by the policy).
    pub async fn reset_password(&self, token: &str, new_password: Password) -> AppResult<()> {
        let invalid = || AppError::bad_input("token", "is invalid, already used or expired");
        let proof: ResetProof = self.secrets.peek_token(RESET_TOKEN, token).await?.ok_or_else(invalid)?;
        let user = self.get(UserId(proof.user)).await.map_err(|_| invalid())?;
        self.check_policy(new_password.expose(), &personal_words(&user), "newPassword")?;
        let hash = self.passwords.hash(new_password.secret()).await?;
        self.secrets.take_token::<ResetProof>(RESET_TOKEN, token).await?.ok_or_else(invalid)?;
        self.replace_password(&user, hash, None, "password_reset").await
    }

    /// Changes the caller's password and ends their other sessions.
    ///
    /// Errors: INVALID_CREDENTIALS (wrong current password), BAD_USER_INPUT (`newPassword`).
    pub async fn change_password(
        &self,
        id: UserId,
        current_session: Uuid,
        current: Password,
        new_password: Password,
    ) -> AppResult<()> {
        let user = self.get(id).await?;
        let stored = repo::password_hash(&self.db, id).await?;
        if !self.passwords.verify(current.secret(), stored).await? {
            return Err(AppError::InvalidCredentials);
        }
        self.check_policy(new_password.expose(), &personal_words(&user), "newPassword")?;
        let hash = self.passwords.hash(new_password.secret()).await?;
        self.replace_password(&user, hash, Some(current_session), "password_changed").await
    }

    /// Stores the hash and ends the other sessions in one transaction, then mails the owner. A
    /// reset (no session kept) also unlocks the account and forgets its failed attempts: the
    /// owner proved control of the address.
    async fn replace_password(
        &self,
        user: &User,
        hash: String,
        keep: Option<Uuid>,
        reason: EndReason,
    ) -> AppResult<()> {
        let now = self.clock.now();
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        repo::set_password_hash(&txn, user.id, hash, now).await?;
        if keep.is_none() && user.locked_until.is_some() {
            repo::set_locked_until(&txn, user.id, None, now).await?;
            let unlocked = NewAuditEvent::new(AuditKind::AccountUnlocked, now)
                .user(user.id)
                .actor(Some(user.id))
                .detail(serde_json::json!({ "via": "password_reset" }));
            audit::record(&txn, unlocked).await?;
        }
        let kind = if keep.is_some() { AuditKind::PasswordChanged } else { AuditKind::PasswordReset };
        let event = NewAuditEvent::new(kind, now).user(user.id).actor(Some(user.id));
        sessions::end_all(&txn, user.id, keep, reason, now, event).await?;
        txn.commit().await.map_err(AppError::internal)?;
        if let (None, Some(email)) = (keep, user.email.as_deref()) {
            self.lockout.clear(email).await?;
        }
        if let Some(email) = user.email.as_deref() {
            let message = Message::PasswordChanged { product: &self.rules.product_name };
            // The change is done; a notice that cannot be sent is logged, not an error.
            match self.templates.render(message, user.locale.as_deref(), email) {
                Ok(mail) => self.send_later(mail),
                Err(e) => tracing::error!(error = %e, "could not render the password-changed notice"),
            }
        }
        Ok(())
    }
}
