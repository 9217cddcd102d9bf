//! Sessions: one row per logged-in device, shared by the features that open them (auth), list
//! them (accounts, admin) and end them (auth, accounts, admin).
//!
//! [`end_all`] is the one way to end a user's sessions along with another change: inside the
//! caller's transaction it revokes them and records the caller's audit event with their count,
//! so the change, the revocation and the log commit together or not at all. Access tokens of
//! an ended session stop working at once, on every instance: every token check reads the
//! session from the database.

pub mod repo;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

use crate::{
    audit::{
        self,
        model::{AuditKind, NewAuditEvent},
    },
    domain::UserId,
    error::{AppError, AppResult},
};

/// Why sessions ended, as stored on the row and in the audit detail.
pub type EndReason = &'static str;

/// Ends every live session of `user` but `keep`, inside the caller's transaction `txn`, and
/// records `event` there with `sessionsRevoked` (the count) added to its detail. Returns the
/// count.
pub async fn end_all(
    txn: &impl ConnectionTrait,
    user: UserId,
    keep: Option<Uuid>,
    reason: EndReason,
    now: DateTime<Utc>,
    event: NewAuditEvent,
) -> AppResult<usize> {
    let ended = repo::revoke_all_sessions(txn, user, keep, reason, now).await?.len();
    audit::record(txn, event.with_detail("sessionsRevoked", ended.into())).await?;
    Ok(ended)
}

/// Ends one session and records SESSION_REVOKED, in one transaction of its own; false when the
/// session was not live. The owner is the actor unless a stolen refresh token ended it.
pub async fn end_one(db: &DatabaseConnection, id: Uuid, reason: EndReason, now: DateTime<Utc>) -> AppResult<bool> {
    let txn = db.begin().await.map_err(AppError::internal)?;
    let ended = repo::revoke_session(&txn, id, reason, now).await?;
    if ended {
        let owner = repo::find_session(&txn, id).await?.map(|r| r.session.user_id);
        let mut event = NewAuditEvent::new(AuditKind::SessionRevoked, now)
            .detail(json!({ "session": id.to_string(), "reason": reason }));
        if let Some(owner) = owner {
            event = event.user(owner).actor((reason != "refresh_reuse").then_some(owner));
        }
        audit::record(&txn, event).await?;
    }
    txn.commit().await.map_err(AppError::internal)?;
    Ok(ended)
}
