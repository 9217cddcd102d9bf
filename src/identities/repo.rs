//! Social identity rows <-> domain identities. Unique violations become CONFLICT on `provider`;
//! `DbErr` never leaves this file.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::{ExternalIdentity, SocialIdentity};
use crate::{
    db::unique_violation,
    domain::UserId,
    entity::social_identities as rows,
    error::{AppError, AppResult},
};

fn to_identity(row: rows::Model) -> SocialIdentity {
    SocialIdentity {
        provider: row.provider,
        email: row.email,
        linked_at: row.linked_at,
        last_used_at: row.last_used_at,
    }
}

/// The account an identity signs in to, if it is linked.
pub async fn owner_of(db: &impl ConnectionTrait, provider: &str, subject: &str) -> AppResult<Option<UserId>> {
    let row = rows::Entity::find()
        .filter(rows::Column::Provider.eq(provider))
        .filter(rows::Column::Subject.eq(subject))
        .one(db)
        .await
        .map_err(AppError::internal)?;
    Ok(row.map(|r| UserId(r.user_id)))
}

/// A user's linked identities, oldest link first.
pub async fn of_user(db: &impl ConnectionTrait, user: UserId) -> AppResult<Vec<SocialIdentity>> {
    let rows = rows::Entity::find()
        .filter(rows::Column::UserId.eq(user.0))
        .order_by_asc(rows::Column::LinkedAt)
        .all(db)
        .await
        .map_err(AppError::internal)?;
    Ok(rows.into_iter().map(to_identity).collect())
}

/// How many identities a user has linked.
pub async fn count(db: &impl ConnectionTrait, user: UserId) -> AppResult<u64> {
    rows::Entity::find().filter(rows::Column::UserId.eq(user.0)).count(db).await.map_err(AppError::internal)
}

/// Stores a link; only a provider-verified address is kept with it.
///
/// Errors: CONFLICT (`provider`) when the identity is linked already (to anyone), or the user
/// has an identity at this provider.
pub async fn insert(
    db: &impl ConnectionTrait,
    user: UserId,
    identity: &ExternalIdentity,
    now: DateTime<Utc>,
) -> AppResult<SocialIdentity> {
    let row = rows::Model {
        id: Uuid::now_v7(),
        user_id: user.0,
        provider: identity.provider.clone(),
        subject: identity.subject.clone(),
        email: identity.verified_email().map(str::to_owned),
        linked_at: now,
        last_used_at: now,
    };
    let stored = rows::ActiveModel::from(row).insert(db).await.map_err(|e| match unique_violation(&e) {
        Some(_) => AppError::Conflict { field: "provider" },
        None => AppError::internal(e),
    })?;
    Ok(to_identity(stored))
}

/// Notes a sign-in with the identity, and the address the provider vouches for now.
pub async fn touch(db: &impl ConnectionTrait, identity: &ExternalIdentity, now: DateTime<Utc>) -> AppResult<()> {
    let mut update = rows::Entity::update_many()
        .col_expr(rows::Column::LastUsedAt, sea_orm::sea_query::Expr::value(now))
        .filter(rows::Column::Provider.eq(identity.provider.as_str()))
        .filter(rows::Column::Subject.eq(identity.subject.as_str()));
    if let Some(email) = identity.verified_email() {
        update = update.col_expr(rows::Column::Email, sea_orm::sea_query::Expr::value(email));
    }
    update.exec(db).await.map(drop).map_err(AppError::internal)
}

/// Removes the user's identity at `provider`; false when there was none.
pub async fn remove(db: &impl ConnectionTrait, user: UserId, provider: &str) -> AppResult<bool> {
    let done = rows::Entity::delete_many()
        .filter(rows::Column::UserId.eq(user.0))
        .filter(rows::Column::Provider.eq(provider))
        .exec(db)
        .await
        .map_err(AppError::internal)?;
    Ok(done.rows_affected > 0)
}

/// Removes every identity of the user; returns how many.
pub async fn remove_all(db: &impl ConnectionTrait, user: UserId) -> AppResult<u64> {
    let done = rows::Entity::delete_many()
        .filter(rows::Column::UserId.eq(user.0))
        .exec(db)
        .await
        .map_err(AppError::internal)?;
    Ok(done.rows_affected)
}
