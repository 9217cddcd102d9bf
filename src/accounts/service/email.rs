//! Proving an email address: after registration, on request, and when changing the address.
//! A proof is a code (typed back with the address) or a link token, both single-use; the
//! address only changes once the new one is proven, and the old one is told of the request.

use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::AccountService;
use crate::{
    audit::{
        self,
        model::{AuditKind, NewAuditEvent},
    },
    domain::{Email, Password, User, UserId},
    error::{AppError, AppResult},
    notify::templates::Message,
    security::crypto::sha256_hex,
    users::repo,
};

const PURPOSE: &str = "verify-email";

/// What a verification code or link proves: that `user` controls `email`.
#[derive(Serialize, Deserialize)]
struct EmailProof {
    user: Uuid,
    email: String,
}

impl AccountService {
    /// Mails `email` a verification code and link for `user`.
    pub(super) async fn send_email_verification(&self, user: &User, email: &Email) -> AppResult<()> {
        let mail = self.verification_mail(user, email).await?;
        self.mailer.send(mail).await
    }

    async fn verification_mail(&self, user: &User, email: &Email) -> AppResult<crate::notify::mail::OutgoingMail> {
        let proof = EmailProof { user: user.id.0, email: email.as_str().to_owned() };
        let ttl = self.rules.email_verification_ttl;
        let code = self.secrets.issue_code(PURPOSE, email.as_str(), &proof, ttl).await?;
        let token = self.secrets.issue_token(PURPOSE, &proof, ttl).await?;
        let link = format!("{}?token={token}", self.rules.verify_email_link);
        let minutes = ttl.as_secs().div_ceil(60);
        let message = Message::VerifyEmail {
            product: &self.rules.product_name,
            code: secrecy::ExposeSecret::expose_secret(&code),
            link: &link,
            minutes,
        };
        self.templates.render(message, user.locale.as_deref(), email.as_str())
    }

    /// Verifies with the token of a mailed link.
    ///
    /// Errors: BAD_USER_INPUT (`token`: unknown, used, expired, or of another purpose),
    /// CONFLICT (`email`) when another account took the address meanwhile.
    pub async fn verify_email_by_token(&self, token: &str) -> AppResult<User> {
        let proof: EmailProof = self
            .secrets
            .take_token(PURPOSE, token)
            .await?
            .ok_or_else(|| AppError::bad_input("token", "is invalid, already used or expired"))?;
        self.apply(proof).await
    }

    /// Verifies with a mailed code typed back with its address.
    ///
    /// Errors: OTP_INVALID, OTP_EXPIRED, BAD_USER_INPUT (`code`), CONFLICT (`email`).
    pub async fn verify_email_by_code(&self, email: &Email, code: &str) -> AppResult<User> {
        let proof: EmailProof = self.secrets.verify_code(PURPOSE, email.as_str(), code).await?;
        self.apply(proof).await
    }

    /// Whether a link token is live (for the landing page; does not consume it).
    pub async fn email_token_is_live(&self, token: &str) -> AppResult<bool> {
        Ok(self.secrets.peek_token::<EmailProof>(PURPOSE, token).await?.is_some())
    }

    async fn apply(&self, proof: EmailProof) -> AppResult<User> {
        let id = UserId(proof.user);
        let user = repo::find_by_id(&self.db, id).await?.ok_or(AppError::OtpInvalid { attempts_remaining: 0 })?;
        let already = user.email.as_deref() == Some(proof.email.as_str()) && user.email_verified_at.is_some();
        if !already {
            let now = self.clock.now();
            let txn = self.db.begin().await.map_err(AppError::internal)?;
            repo::set_verified_email(&txn, id, &proof.email, now).await?;
            let changed = user.email.as_deref() != Some(proof.email.as_str());
            let event = NewAuditEvent::new(AuditKind::EmailVerified, now)
                .user(id)
                .actor(Some(id))
                .detail(json!({ "changedAddress": changed }));
            audit::record(&txn, event).await?;
            txn.commit().await.map_err(AppError::internal)?;
        }
        self.get(id).await
    }

    /// Sends a new verification mail to an unverified account's address. Answers the same
    /// whether or not the address has an account or is already verified.
    ///
    /// Errors: RATE_LIMITED (a cooldown and a daily cap per address, counted for every address).
    pub async fn request_email_verification(&self, email: &Email) -> AppResult<()> {
        self.send_limits.mail(PURPOSE, &sha256_hex(email.as_str().as_bytes())).await?;
        let Some(found) = repo::find_credentials(&self.db, email.as_str()).await? else { return Ok(()) };
        let user = found.user;
        if user.email_verified_at.is_some() || !user.is_active {
            return Ok(());
        }
        let mail = self.verification_mail(&user, email).await?;
        self.send_later(mail);
        Ok(())
    }

    /// Starts a change of the caller's email: the new address gets a verification mail and
    /// takes effect only once verified; the old address is told. Accounts with a password must
    /// give it.
    ///
    /// Errors: BAD_USER_INPUT (`currentPassword` missing), INVALID_CREDENTIALS (wrong
    /// password), RATE_LIMITED, NOT_FOUND.
    pub async fn request_email_change(
        &self,
        id: UserId,
        new_email: &Email,
        password: Option<Password>,
    ) -> AppResult<()> {
        let user = self.get(id).await?;
        self.confirm_password(id, password).await?;
        if user.email.as_deref() == Some(new_email.as_str()) && user.email_verified_at.is_some() {
            return Err(AppError::bad_input("newEmail", "is already your verified address"));
        }
        self.send_limits.mail("change-email", &sha256_hex(new_email.as_str().as_bytes())).await?;
        let mail = self.verification_mail(&user, new_email).await?;
        self.mailer.send(mail).await?;
        if let Some(old) = user.email.as_deref().filter(|old| *old != new_email.as_str()) {
            let message =
                Message::EmailChangeRequested { product: &self.rules.product_name, new_email: &new_email.masked() };
            self.mailer.send(self.templates.render(message, user.locale.as_deref(), old)?).await?;
        }
        Ok(())
    }

    /// Checks the caller's current password when the account has one.
    ///
    /// Errors: BAD_USER_INPUT (`currentPassword` missing), INVALID_CREDENTIALS.
    pub(super) async fn confirm_password(&self, id: UserId, password: Option<Password>) -> AppResult<()> {
        let Some(hash) = repo::password_hash(&self.db, id).await? else { return Ok(()) };
        let password = password.ok_or_else(|| AppError::bad_input("currentPassword", "is required"))?;
        if !self.passwords.verify(password.secret(), Some(hash)).await? {
            return Err(AppError::InvalidCredentials);
        }
        Ok(())
    }
}
