//! Audit event kinds and records.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{client::ClientInfo, domain::UserId};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum AuditKind {
    Registered,
    LoginSucceeded,
    LoginFailed,
    OtpFailed,
    SessionRevoked,
    PasswordChanged,
    PasswordReset,
    EmailVerified,
    PhoneVerified,
    ProfileUpdated,
    AvatarChanged,
    UserCreated,
    UserUpdated,
    RoleChanged,
    Activated,
    Deactivated,
    Deleted,
    AccountLocked,
    AccountUnlocked,
    /// Someone proved an unverified account's address through a provider and took it over.
    AccountClaimed,
    SocialAccountLinked,
    SocialAccountUnlinked,
}

impl AuditKind {
    const ALL: [Self; 22] = [
        Self::Registered,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::OtpFailed,
        Self::SessionRevoked,
        Self::PasswordChanged,
        Self::PasswordReset,
        Self::EmailVerified,
        Self::PhoneVerified,
        Self::ProfileUpdated,
        Self::AvatarChanged,
        Self::UserCreated,
        Self::UserUpdated,
        Self::RoleChanged,
        Self::Activated,
        Self::Deactivated,
        Self::Deleted,
        Self::AccountLocked,
        Self::AccountUnlocked,
        Self::AccountClaimed,
        Self::SocialAccountLinked,
        Self::SocialAccountUnlinked,
    ];

    /// The stored name (the GraphQL enum value).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "REGISTERED",
            Self::LoginSucceeded => "LOGIN_SUCCEEDED",
            Self::LoginFailed => "LOGIN_FAILED",
            Self::OtpFailed => "OTP_FAILED",
            Self::SessionRevoked => "SESSION_REVOKED",
            Self::PasswordChanged => "PASSWORD_CHANGED",
            Self::PasswordReset => "PASSWORD_RESET",
            Self::EmailVerified => "EMAIL_VERIFIED",
            Self::PhoneVerified => "PHONE_VERIFIED",
            Self::ProfileUpdated => "PROFILE_UPDATED",
            Self::AvatarChanged => "AVATAR_CHANGED",
            Self::UserCreated => "USER_CREATED",
            Self::UserUpdated => "USER_UPDATED",
            Self::RoleChanged => "ROLE_CHANGED",
            Self::Activated => "ACTIVATED",
            Self::Deactivated => "DEACTIVATED",
            Self::Deleted => "DELETED",
            Self::AccountLocked => "ACCOUNT_LOCKED",
            Self::AccountUnlocked => "ACCOUNT_UNLOCKED",
            Self::AccountClaimed => "ACCOUNT_CLAIMED",
            Self::SocialAccountLinked => "SOCIAL_ACCOUNT_LINKED",
            Self::SocialAccountUnlinked => "SOCIAL_ACCOUNT_UNLINKED",
        }
    }

    pub fn from_db(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

/// An event to record. Build with [`NewAuditEvent::new`] and the chained setters.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub kind: AuditKind,
    pub user: Option<UserId>,
    pub actor: Option<UserId>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Small, secret-free JSON.
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

impl NewAuditEvent {
    pub fn new(kind: AuditKind, at: DateTime<Utc>) -> Self {
        Self { kind, user: None, actor: None, ip: None, user_agent: None, detail: serde_json::json!({}), at }
    }

    /// The account the event is about.
    pub fn user(mut self, user: UserId) -> Self {
        self.user = Some(user);
        self
    }

    /// Who caused it (the user themselves, an admin, or none for the system).
    pub fn actor(mut self, actor: Option<UserId>) -> Self {
        self.actor = actor;
        self
    }

    /// Where the request came from.
    pub fn client(mut self, client: &ClientInfo) -> Self {
        self.ip = client.ip_text();
        self.user_agent = client.user_agent.clone();
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// Adds one field to the detail object.
    pub fn with_detail(mut self, key: &str, value: serde_json::Value) -> Self {
        if !self.detail.is_object() {
            self.detail = serde_json::json!({});
        }
        if let Some(fields) = self.detail.as_object_mut() {
            fields.insert(key.to_owned(), value);
        }
        self
    }
}

/// A recorded event.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: Uuid,
    pub kind: Option<AuditKind>,
    pub user: Option<UserId>,
    pub actor: Option<UserId>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user: Option<UserId>,
    pub actor: Option<UserId>,
    pub kind: Option<AuditKind>,
    pub after: Option<DateTime<Utc>>,
    pub before: Option<DateTime<Utc>>,
}
