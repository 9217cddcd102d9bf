//! Server-key rows: the signing key and the code secret generated at first start. `DbErr`
//! never leaves this file.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::{
    entity::server_keys,
    error::{AppError, AppResult},
};

/// A stored server key: its id (the `kid` of a signing key) and its material.
pub struct StoredKey {
    pub id: String,
    pub material: String,
}

pub async fn find_server_key(db: &impl ConnectionTrait, purpose: &str) -> AppResult<Option<StoredKey>> {
    let row = server_keys::Entity::find()
        .filter(server_keys::Column::Purpose.eq(purpose))
        .one(db)
        .await
        .map_err(AppError::internal)?;
    Ok(row.map(|row| StoredKey { id: row.id, material: row.material }))
}

/// Stores a key unless one exists for `purpose`, then returns whichever is stored: when
/// instances start together, all end up with the first one written.
pub async fn store_server_key_once(
    db: &impl ConnectionTrait,
    id: &str,
    purpose: &str,
    algorithm: &str,
    material: &str,
    now: DateTime<Utc>,
) -> AppResult<StoredKey> {
    let row = server_keys::ActiveModel {
        id: Set(id.to_owned()),
        purpose: Set(purpose.to_owned()),
        algorithm: Set(algorithm.to_owned()),
        material: Set(material.to_owned()),
        created_at: Set(now),
    };
    server_keys::Entity::insert(row)
        .on_conflict_do_nothing_on([server_keys::Column::Purpose])
        .exec(db)
        .await
        .map_err(AppError::internal)?;
    find_server_key(db, purpose).await?.ok_or_else(|| AppError::internal_msg("server key vanished after insert"))
}
