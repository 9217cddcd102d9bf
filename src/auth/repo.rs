//! Server-key rows: signing keys (several, numbered, retirable) and the code secret. `DbErr`
//! never leaves this file.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, sea_query::Expr};

use crate::{
    db::unique_violation,
    entity::server_keys,
    error::{AppError, AppResult},
};

/// A stored server key: its id (the `kid` of a signing key) and its material.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub id: String,
    pub algorithm: String,
    pub material: String,
    /// 1 for a purpose's first key, then one more per rotation.
    pub sequence: i64,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

fn to_key(row: server_keys::Model) -> StoredKey {
    StoredKey {
        id: row.id,
        algorithm: row.algorithm,
        material: row.material,
        sequence: row.sequence,
        created_at: row.created_at,
        retired_at: row.retired_at,
    }
}

/// Every key of `purpose`, oldest first.
pub async fn server_keys(db: &impl ConnectionTrait, purpose: &str) -> AppResult<Vec<StoredKey>> {
    let rows = server_keys::Entity::find()
        .filter(server_keys::Column::Purpose.eq(purpose))
        .order_by_asc(server_keys::Column::Sequence)
        .all(db)
        .await
        .map_err(AppError::internal)?;
    Ok(rows.into_iter().map(to_key).collect())
}

/// The first key of `purpose`, if stored.
pub async fn find_server_key(db: &impl ConnectionTrait, purpose: &str) -> AppResult<Option<StoredKey>> {
    Ok(server_keys(db, purpose).await?.into_iter().next())
}

/// Stores a purpose's first key unless one exists, then returns whichever is stored: when
/// instances start together, all end up with the first one written.
pub async fn store_server_key_once(
    db: &impl ConnectionTrait,
    id: &str,
    purpose: &str,
    algorithm: &str,
    material: &str,
    now: DateTime<Utc>,
) -> AppResult<StoredKey> {
    let row = new_row(id, purpose, algorithm, material, 1, now);
    server_keys::Entity::insert(row)
        .on_conflict_do_nothing_on([server_keys::Column::Purpose, server_keys::Column::Sequence])
        .exec(db)
        .await
        .map_err(AppError::internal)?;
    find_server_key(db, purpose).await?.ok_or_else(|| AppError::internal_msg("server key vanished after insert"))
}

/// Stores the next key of `purpose` (one past the highest sequence).
///
/// Errors: CONFLICT (`key`) when a concurrent rotation took that sequence.
pub async fn store_next_key(
    db: &impl ConnectionTrait,
    id: &str,
    purpose: &str,
    algorithm: &str,
    material: &str,
    now: DateTime<Utc>,
) -> AppResult<StoredKey> {
    let next = server_keys(db, purpose).await?.last().map_or(1, |k| k.sequence + 1);
    let row = new_row(id, purpose, algorithm, material, next, now);
    let stored =
        server_keys::Entity::insert(row).exec_with_returning(db).await.map_err(|e| match unique_violation(&e) {
            Some(_) => AppError::Conflict { field: "key" },
            None => AppError::internal(e),
        })?;
    Ok(to_key(stored))
}

/// Marks a key retired; false when no live key has that id.
pub async fn retire_key(db: &impl ConnectionTrait, id: &str, now: DateTime<Utc>) -> AppResult<bool> {
    let done = server_keys::Entity::update_many()
        .col_expr(server_keys::Column::RetiredAt, Expr::value(now))
        .filter(server_keys::Column::Id.eq(id))
        .filter(server_keys::Column::RetiredAt.is_null())
        .exec(db)
        .await
        .map_err(AppError::internal)?;
    Ok(done.rows_affected > 0)
}

fn new_row(
    id: &str,
    purpose: &str,
    algorithm: &str,
    material: &str,
    sequence: i64,
    now: DateTime<Utc>,
) -> server_keys::ActiveModel {
    server_keys::ActiveModel {
        id: Set(id.to_owned()),
        purpose: Set(purpose.to_owned()),
        algorithm: Set(algorithm.to_owned()),
        material: Set(material.to_owned()),
        created_at: Set(now),
        sequence: Set(sequence),
        retired_at: Set(None),
    }
}
