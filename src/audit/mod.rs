//! The audit log: who did what to which account, from where, and when. Events are written in
//! the same transaction as the change they record, so the log and the data never disagree; a
//! detail never holds a secret (no password, code, token or hash). Admins read it through
//! `auditEvents`; an optional retention period prunes old events in the background.

pub mod graphql;
pub mod model;
mod repo;
pub mod service;

use sea_orm::ConnectionTrait;

use crate::error::AppResult;

/// Records `event` on `db`: pass the transaction of the change it records, so both commit
/// together (or the connection, for an event that changes nothing else, like a failed login).
/// The one way every feature writes to the audit log.
pub async fn record(db: &impl ConnectionTrait, event: model::NewAuditEvent) -> AppResult<()> {
    repo::record(db, event).await
}
