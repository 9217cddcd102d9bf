//! Proving a phone number by SMS code. The number changes (and counts as verified) only once
//! the code comes back; accounts with a password must give it to change their number.

use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};

use super::AccountService;
use crate::{
    audit::{
        self,
        model::{AuditKind, NewAuditEvent},
    },
    client::ClientInfo,
    domain::{Password, Phone, User, UserId},
    error::AppError,
    error::AppResult,
    notify::{sms::OutgoingSms, templates::Message},
    users::repo,
};

const PURPOSE: &str = "verify-phone";

#[derive(Serialize, Deserialize)]
struct PhoneProof {
    phone: String,
}

impl AccountService {
    /// Texts a verification code to `phone` for the caller.
    ///
    /// Errors: BAD_USER_INPUT (`phone`: country not allowed; `currentPassword` missing when
    /// changing the number of an account with a password), INVALID_CREDENTIALS, RATE_LIMITED,
    /// INTERNAL when the SMS cannot be sent.
    pub async fn request_phone_verification(
        &self,
        id: UserId,
        phone: &Phone,
        password: Option<Password>,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let user = self.get(id).await?;
        if user.phone.as_deref() != Some(phone.as_str()) {
            self.confirm_password(id, password).await?;
        }
        self.send_limits.sms(PURPOSE, phone, client).await?;
        let ttl = self.rules.phone_code_ttl;
        let proof = PhoneProof { phone: phone.as_str().to_owned() };
        let code = self.secrets.issue_code(PURPOSE, &id.to_string(), &proof, ttl).await?;
        let message = Message::PhoneCode {
            product: &self.rules.product_name,
            code: secrecy::ExposeSecret::expose_secret(&code),
            minutes: ttl.as_secs().div_ceil(60),
        };
        let body = self.templates.render_sms(message, user.locale.as_deref())?;
        self.sms.send(OutgoingSms { to: phone.as_str().to_owned(), body }).await
    }

    /// Completes a phone verification with the texted code; the number becomes the caller's,
    /// verified.
    ///
    /// Errors: OTP_INVALID, OTP_EXPIRED, BAD_USER_INPUT (`code`), CONFLICT (`phone`) when
    /// another account verified the number meanwhile.
    pub async fn verify_phone(&self, id: UserId, code: &str) -> AppResult<User> {
        let proof: PhoneProof = self.secrets.verify_code(PURPOSE, &id.to_string(), code).await?;
        let now = self.clock.now();
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        repo::set_verified_phone(&txn, id, &proof.phone, now).await?;
        audit::record(&txn, NewAuditEvent::new(AuditKind::PhoneVerified, now).user(id).actor(Some(id))).await?;
        txn.commit().await.map_err(AppError::internal)?;
        self.get(id).await
    }
}
