//! The `avatar` column of user rows: the stored file name of a user's avatar, or null.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr};

use crate::{
    domain::{User, UserId},
    entity::users,
    error::{AppError, AppResult},
    users::repo::to_user,
};

/// Sets `updated_at` on the user's row as the first write of a transaction, so the row (on
/// PostgreSQL) or the database (on SQLite) is write-locked before its avatar is read: two
/// concurrent changes then run one after the other, and each sees the file the other stored.
///
/// Errors: NOT_FOUND (`user`).
pub async fn lock_user(db: &impl ConnectionTrait, id: UserId, now: DateTime<Utc>) -> AppResult<()> {
    let touched = users::Entity::update_many()
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(id.0))
        .exec(db)
        .await
        .map_err(AppError::internal)?;
    if touched.rows_affected == 0 {
        return Err(AppError::NotFound("user"));
    }
    Ok(())
}

/// Replaces the user's avatar file name, returning the updated user and the previous name.
///
/// Errors: NOT_FOUND (`user`).
pub async fn replace_avatar(
    db: &impl ConnectionTrait,
    id: UserId,
    avatar: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<(User, Option<String>)> {
    let row = users::Entity::find_by_id(id.0).one(db).await.map_err(AppError::internal)?;
    let mut row = row.ok_or(AppError::NotFound("user"))?;
    let previous = row.avatar.take();
    users::Entity::update_many()
        .col_expr(users::Column::Avatar, Expr::value(avatar.map(str::to_owned)))
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(id.0))
        .exec(db)
        .await
        .map_err(AppError::internal)?;
    row.avatar = avatar.map(str::to_owned);
    row.updated_at = now;
    Ok((to_user(row), previous))
}
