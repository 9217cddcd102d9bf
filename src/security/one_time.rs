//! Single-use proofs of control over an address: six-digit codes bound to a purpose and a
//! subject (an address or a user), and link tokens bound to a purpose.
//!
//! Both live in the KV, hashed: a code as an HMAC keyed by the server secret (see
//! [`CodeHasher`]), a token under the SHA-256 of its value. The purpose is part of every key, so
//! a password-reset token can never be spent as an email-verification token, nor the reverse.
//! Codes allow a bounded number of wrong tries, counted atomically so the bound holds under
//! concurrent guesses; both are consumed with an atomic take, so each works once. Expiry is
//! checked against the injected clock; KV TTLs only collect garbage.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{
    codes::{CodeHasher, generate_code, is_well_formed},
    crypto::{random_token, sha256_hex},
};
use crate::{
    clock::Clock,
    error::{AppError, AppResult},
    kv::{Kv, Write},
};

/// Records stay readable this long past expiry, to answer OTP_EXPIRED rather than OTP_INVALID.
const EXPIRED_MEMORY: Duration = Duration::from_secs(3600);

#[derive(Serialize, Deserialize)]
struct CodeRecord {
    digest: String,
    /// Distinguishes successive codes for one subject: a new code resets the tries and kills
    /// the old one.
    nonce: String,
    payload: String,
    expires_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct TokenRecord {
    payload: String,
    expires_at: DateTime<Utc>,
}

/// Issues and checks codes and link tokens.
#[derive(Clone)]
pub struct OneTimeSecrets {
    kv: Arc<dyn Kv>,
    clock: Arc<dyn Clock>,
    hasher: CodeHasher,
    max_attempts: u32,
}

impl OneTimeSecrets {
    pub fn new(kv: Arc<dyn Kv>, clock: Arc<dyn Clock>, hasher: CodeHasher, max_attempts: u32) -> Self {
        Self { kv, clock, hasher, max_attempts }
    }

    /// A fresh code for `subject` under `purpose`, replacing any earlier one, carrying `payload`.
    pub async fn issue_code(
        &self,
        purpose: &str,
        subject: &str,
        payload: &impl Serialize,
        ttl: Duration,
    ) -> AppResult<SecretString> {
        let (code, write) = self.new_code(purpose, subject, payload, ttl)?;
        self.kv.write(&[write]).await?;
        Ok(code)
    }

    /// A fresh code as [`OneTimeSecrets::issue_code`] makes it, and the write that stores it,
    /// for a caller that stores it with its own writes. The code works once that write is done.
    pub fn new_code(
        &self,
        purpose: &str,
        subject: &str,
        payload: &impl Serialize,
        ttl: Duration,
    ) -> AppResult<(SecretString, Write)> {
        let code = generate_code();
        let nonce = random_token();
        let record = CodeRecord {
            digest: self.hasher.digest(&code_scope(purpose, subject, &nonce), code.expose_secret()),
            nonce,
            payload: serde_json::to_string(payload).map_err(AppError::internal)?,
            expires_at: self.clock.now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
        };
        let value = serde_json::to_string(&record).map_err(AppError::internal)?;
        Ok((code, Write::Set { key: code_key(purpose, subject), value, ttl: ttl + EXPIRED_MEMORY }))
    }

    /// Checks `code` for `subject` and, when right, consumes it and returns its payload.
    ///
    /// Errors: BAD_USER_INPUT (`code` is not six digits; no try is spent), OTP_INVALID (wrong,
    /// unknown or used; with the tries left), OTP_EXPIRED.
    pub async fn verify_code<T: DeserializeOwned>(&self, purpose: &str, subject: &str, code: &str) -> AppResult<T> {
        if !is_well_formed(code) {
            return Err(AppError::bad_input("code", "must be 6 digits"));
        }
        let key = code_key(purpose, subject);
        let dead = AppError::OtpInvalid { attempts_remaining: 0 };
        let Some(raw) = self.kv.get(&key).await? else { return Err(dead) };
        let record: CodeRecord = serde_json::from_str(&raw).map_err(AppError::internal)?;
        if self.clock.now() >= record.expires_at {
            return Err(AppError::OtpExpired);
        }
        let tries = self.kv.increment(&format!("{key}:tries:{}", record.nonce), EXPIRED_MEMORY * 24).await?;
        if tries > u64::from(self.max_attempts) {
            self.kv.delete(&[&key]).await?;
            return Err(dead);
        }
        if !self.hasher.matches(&code_scope(purpose, subject, &record.nonce), code, &record.digest) {
            let remaining = self.max_attempts.saturating_sub(u32::try_from(tries).unwrap_or(u32::MAX));
            if remaining == 0 {
                self.kv.delete(&[&key]).await?;
            }
            return Err(AppError::OtpInvalid { attempts_remaining: remaining });
        }
        // Single use: of concurrent right answers only the taker wins, and a newer code issued
        // meanwhile (another nonce) makes this one stale.
        let taken = self.kv.take(&key).await?;
        let current = taken.and_then(|raw| serde_json::from_str::<CodeRecord>(&raw).ok());
        match current {
            Some(taken) if taken.nonce == record.nonce => {
                serde_json::from_str(&record.payload).map_err(AppError::internal)
            }
            _ => Err(dead),
        }
    }

    /// A fresh link token under `purpose` carrying `payload`.
    pub async fn issue_token(&self, purpose: &str, payload: &impl Serialize, ttl: Duration) -> AppResult<String> {
        let token = random_token();
        let record = TokenRecord {
            payload: serde_json::to_string(payload).map_err(AppError::internal)?,
            expires_at: self.clock.now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
        };
        let raw = serde_json::to_string(&record).map_err(AppError::internal)?;
        self.kv.set(&token_key(purpose, &token), &raw, ttl).await?;
        Ok(token)
    }

    /// The payload of a live token, without consuming it.
    pub async fn peek_token<T: DeserializeOwned>(&self, purpose: &str, token: &str) -> AppResult<Option<T>> {
        let Some(raw) = self.kv.get(&token_key(purpose, token)).await? else { return Ok(None) };
        self.live_payload(&raw)
    }

    /// Consumes a live token and returns its payload; None when unknown, used or expired.
    pub async fn take_token<T: DeserializeOwned>(&self, purpose: &str, token: &str) -> AppResult<Option<T>> {
        let Some(raw) = self.kv.take(&token_key(purpose, token)).await? else { return Ok(None) };
        self.live_payload(&raw)
    }

    fn live_payload<T: DeserializeOwned>(&self, raw: &str) -> AppResult<Option<T>> {
        let record: TokenRecord = serde_json::from_str(raw).map_err(AppError::internal)?;
        if self.clock.now() >= record.expires_at {
            return Ok(None);
        }
        serde_json::from_str(&record.payload).map(Some).map_err(AppError::internal)
    }
}

fn code_key(purpose: &str, subject: &str) -> String {
    format!("code:{purpose}:{}", sha256_hex(subject.as_bytes()))
}

fn code_scope(purpose: &str, subject: &str, nonce: &str) -> String {
    format!("{purpose}:{subject}:{nonce}")
}

fn token_key(purpose: &str, token: &str) -> String {
    // Tokens are 43 URL-safe characters; anything else cannot be ours, but hashing keeps the
    // key bounded whatever a client sends.
    format!("token:{purpose}:{}", sha256_hex(token.as_bytes()))
}
