//! Social identities: which account a provider's person signs in to, and the one rule about
//! linking that several features share. An identity is (provider, the provider's subject id);
//! an email address is never the key, because providers let people change and recycle them.

pub mod repo;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    audit::{
        self,
        model::{AuditKind, NewAuditEvent},
    },
    client::ClientInfo,
    domain::User,
    error::AppResult,
    sessions,
    users::repo as users,
};

/// What a provider told us about the person who signed in. The address counts only when the
/// provider vouches that the person controls it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExternalIdentity {
    /// The provider's name as configured (`GOOGLE`, `GITHUB`, `KEYCLOAK`...).
    pub provider: String,
    /// The provider's stable id of the person.
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

impl ExternalIdentity {
    /// The address, when the provider vouches for it.
    pub fn verified_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified)
    }
}

/// A linked identity, as its owner sees it.
#[derive(Debug, Clone)]
pub struct SocialIdentity {
    pub provider: String,
    /// The provider-verified address at the last sign-in, if any.
    pub email: Option<String>,
    pub linked_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

/// Links `identity` to `user` inside the caller's transaction and records it. `actor` is the
/// signed-in user linking it, or the user whose mailed code proved it.
///
/// Errors: CONFLICT (`provider`) when the identity is linked already or the user has one at
/// this provider.
pub async fn link(
    txn: &impl ConnectionTrait,
    user: &User,
    identity: &ExternalIdentity,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> AppResult<SocialIdentity> {
    let linked = repo::insert(txn, user.id, identity, now).await?;
    let event = NewAuditEvent::new(AuditKind::SocialAccountLinked, now)
        .user(user.id)
        .actor(Some(user.id))
        .client(client)
        .detail(json!({ "provider": identity.provider }));
    audit::record(txn, event).await?;
    Ok(linked)
}

/// Links an identity whose provider-verified address is `user`'s, after the person proved that
/// address again with a mailed code. Returns whether the account was claimed.
///
/// Pre-registration defence: when the account's address was never verified, whoever
/// registered it never proved it, and the person proving it now is its owner. Claiming removes
/// everything the registrant could have set up to get back in (password, phone, other
/// identities), ends every session, and marks the address verified, all in `txn`.
pub async fn link_proven(
    txn: &impl ConnectionTrait,
    user: &User,
    identity: &ExternalIdentity,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let claimed = user.email_verified_at.is_none();
    if claimed {
        users::clear_credentials(txn, user.id, now).await?;
        let removed = repo::remove_all(txn, user.id).await?;
        if let Some(email) = identity.verified_email() {
            users::set_verified_email(txn, user.id, email, now).await?;
        }
        let event = NewAuditEvent::new(AuditKind::AccountClaimed, now)
            .user(user.id)
            .actor(Some(user.id))
            .client(client)
            .detail(json!({ "provider": identity.provider, "identitiesRemoved": removed }));
        sessions::end_all(txn, user.id, None, "account_claimed", now, event).await?;
    }
    link(txn, user, identity, client, now).await?;
    Ok(claimed)
}
