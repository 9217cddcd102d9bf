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

/// Makes room for one more session of `user` under `limit` (0: no limit), inside the caller's
/// transaction: ends the least recently used live sessions beyond `limit - 1`, each recorded as
/// SESSION_REVOKED with reason `session_limit`. The caller must already hold the account's row
/// lock (any write to it), so that concurrent logins count one after another.
pub async fn make_room(txn: &impl ConnectionTrait, user: UserId, limit: u32, now: DateTime<Utc>) -> AppResult<usize> {
    if limit == 0 {
        return Ok(0);
    }
    let live = repo::live_sessions(txn, user, now).await?;
    let keep = usize::try_from(limit - 1).unwrap_or(usize::MAX);
    let mut ended = 0;
    for session in live.iter().skip(keep) {
        if repo::revoke_session(txn, session.id, "session_limit", now).await? {
            let event = NewAuditEvent::new(AuditKind::SessionRevoked, now)
                .user(user)
                .detail(json!({ "session": session.id.to_string(), "reason": "session_limit" }));
            audit::record(txn, event).await?;
            ended += 1;
        }
    }
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
