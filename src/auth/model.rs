//! Domain types of authentication: sessions, pending challenges, issued tokens.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    domain::{Session, User},
    identities::ExternalIdentity,
};

/// Claims of an access token (RFC 9068 profile).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub sid: String,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
    /// Not before: idgate does not issue it, but a token that carries one is refused until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
}

/// What a successful login, code check or refresh hands the client.
#[derive(Debug, Clone)]
pub struct AuthGrant {
    pub access_token: String,
    /// `<session id>.<secret>`: names its session, so refresh is one primary-key lookup.
    pub refresh_token: String,
    pub expires_in: u64,
    pub user: User,
    pub session: Session,
}

/// How a code reaches the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
pub enum OtpChannel {
    Email,
    Sms,
}

/// A pending second step, as stored in the KV under its id: for whom and where the code goes.
/// The code itself is a one-time secret stored apart, as a digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingChallenge {
    /// The account logging in; None for a phone signup or a number with no account.
    pub user_id: Option<Uuid>,
    /// For a phone signup: the number whose account verification creates.
    pub signup_phone: Option<String>,
    pub channel: OtpChannel,
    /// Where codes go (email or E.164); None when nothing is ever sent.
    pub to: Option<String>,
    /// `to`, masked, as shown to the client.
    pub destination: String,
    pub locale: Option<String>,
    /// Counts resends.
    pub generation: u32,
    pub expires_at: DateTime<Utc>,
    pub resend_available_at: DateTime<Utc>,
    pub device_name: Option<String>,
    /// A provider identity whose address matched this account: the code proves the person owns
    /// the address, and completing the challenge links the identity (`identities::link_proven`).
    #[serde(default)]
    pub link: Option<ExternalIdentity>,
}

/// What the client learns about a challenge.
#[derive(Debug, Clone)]
pub struct ChallengeView {
    pub challenge_id: String,
    pub channel: OtpChannel,
    /// Masked: enough to recognise, not to learn the address.
    pub destination: String,
    pub expires_at: DateTime<Utc>,
    pub resend_available_at: DateTime<Utc>,
}

/// Which kind of token a check looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum TokenType {
    Access,
    Refresh,
}

/// What a token check tells about a live token (an inactive one gets nothing).
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub token_type: TokenType,
    pub subject: crate::domain::UserId,
    pub session_id: Uuid,
    /// The account's role now.
    pub role: crate::domain::Role,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The result of a password check.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    Granted(Box<AuthGrant>),
    ChallengeSent(ChallengeView),
}

/// A device name as the user typed it: trimmed, at most 100 characters.
pub fn parse_device_name(raw: Option<String>) -> crate::error::AppResult<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    let name = raw.trim();
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(crate::error::AppError::bad_input("deviceName", "must be at most 100 printable characters"));
    }
    Ok((!name.is_empty()).then(|| name.to_owned()))
}
