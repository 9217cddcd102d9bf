//! Audit rows. Events are listed newest first by id (UUIDv7, so time-ordered), which makes the
//! id itself a stable keyset cursor.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

use super::model::{AuditEvent, AuditFilter, AuditKind, NewAuditEvent};
use crate::{
    domain::UserId,
    entity::audit_events,
    error::{AppError, AppResult},
};

/// Writes `event` on `db` (pass the transaction of the change it records).
pub async fn record(db: &impl ConnectionTrait, event: NewAuditEvent) -> AppResult<()> {
    let row = audit_events::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(event.kind.as_str().to_owned()),
        user_id: Set(event.user.map(|u| u.0)),
        actor_id: Set(event.actor.map(|u| u.0)),
        ip: Set(event.ip),
        user_agent: Set(event.user_agent),
        detail: Set(event.detail.to_string()),
        created_at: Set(event.at),
    };
    row.insert(db).await.map(drop).map_err(AppError::internal)
}

fn filtered(filter: &AuditFilter) -> Select<audit_events::Entity> {
    let mut query = audit_events::Entity::find();
    if let Some(user) = filter.user {
        query = query.filter(audit_events::Column::UserId.eq(user.0));
    }
    if let Some(actor) = filter.actor {
        query = query.filter(audit_events::Column::ActorId.eq(actor.0));
    }
    if let Some(kind) = filter.kind {
        query = query.filter(audit_events::Column::Kind.eq(kind.as_str()));
    }
    if let Some(after) = filter.after {
        query = query.filter(audit_events::Column::CreatedAt.gte(after));
    }
    if let Some(before) = filter.before {
        query = query.filter(audit_events::Column::CreatedAt.lt(before));
    }
    query
}

/// Up to `limit` events matching `filter`, newest first, older than the event `after` (a
/// cursor id) when given; plus whether more follow, and how many match in all.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &AuditFilter,
    after: Option<Uuid>,
    limit: u64,
) -> AppResult<(Vec<AuditEvent>, bool, u64)> {
    let total = filtered(filter).count(db).await.map_err(AppError::internal)?;
    let mut query = filtered(filter);
    if let Some(after) = after {
        query = query.filter(audit_events::Column::Id.lt(after));
    }
    let mut rows =
        query.order_by_desc(audit_events::Column::Id).limit(limit + 1).all(db).await.map_err(AppError::internal)?;
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let events = rows
        .into_iter()
        .map(|row| AuditEvent {
            id: row.id,
            kind: AuditKind::from_db(&row.kind),
            user: row.user_id.map(UserId),
            actor: row.actor_id.map(UserId),
            ip: row.ip,
            user_agent: row.user_agent,
            detail: serde_json::from_str(&row.detail).unwrap_or_default(),
            at: row.created_at,
        })
        .collect();
    Ok((events, more, total))
}

/// Deletes events older than `cutoff`; returns how many.
pub async fn prune(db: &impl ConnectionTrait, cutoff: DateTime<Utc>) -> AppResult<u64> {
    let result = audit_events::Entity::delete_many()
        .filter(audit_events::Column::CreatedAt.lt(cutoff))
        .exec(db)
        .await
        .map_err(AppError::internal)?;
    Ok(result.rows_affected)
}
