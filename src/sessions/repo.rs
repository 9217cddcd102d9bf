//! Session rows: one per logged-in device. `DbErr` never leaves this file.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ColumnType, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, JoinType, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, RelationTrait, Statement, Value,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use crate::{
    db::{ModelColumns, Reader, Template},
    domain::{Session, User, UserId},
    entity::{sessions, users},
    error::{AppError, AppResult},
};

/// A session row as the refresh logic needs it.
pub struct SessionRecord {
    pub session: Session,
    pub refresh_hash: String,
    pub previous_refresh_hash: Option<String>,
    pub rotated_at: DateTime<Utc>,
    pub revoked: bool,
}

fn to_session(row: &sessions::Model) -> Session {
    Session {
        id: row.id,
        user_id: UserId(row.user_id),
        device_name: row.device_name.clone(),
        user_agent: row.user_agent.clone(),
        ip: row.ip.clone(),
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        expires_at: row.expires_at,
    }
}

/// What the per-request token check needs to know of a session, with its account as it is now.
pub struct SessionStanding {
    pub revoked: bool,
    pub expires_at: DateTime<Utc>,
    pub user: User,
}

/// The standing of session `id` if it belongs to `user`, with the account, in one query
/// (session joined with its account): the database, not a cache, decides whether an access
/// token's session is live, and the same round trip hands resolvers the caller's account.
pub async fn session_standing(db: &impl ConnectionTrait, id: Uuid, user: UserId) -> AppResult<Option<SessionStanding>> {
    let statement = standing_statement(db.get_database_backend(), id, user)?;
    let rows = StandingRow::find_by_statement(statement).all(db).await.map_err(AppError::internal)?;
    Ok(rows.into_iter().next().map(|row| SessionStanding {
        revoked: row.session_revoked_at.is_some(),
        expires_at: row.session_expires_at,
        user: crate::users::repo::to_user(row.user),
    }))
}

/// [`session_standing`] on the held connections of every request's path (the token check).
pub async fn read_session_standing(reader: &Reader, id: Uuid, user: UserId) -> AppResult<Option<SessionStanding>> {
    static COLUMNS: LazyLock<ModelColumns<users::Entity>> = LazyLock::new(|| {
        ModelColumns::with(&[
            ("session_revoked_at", ColumnType::TimestampWithTimeZone),
            ("session_expires_at", ColumnType::TimestampWithTimeZone),
        ])
    });
    let statement = standing_statement(reader.backend(), id, user)?;
    let Some((user, session)) = reader.models(statement, &COLUMNS).await?.into_iter().next() else {
        return Ok(None);
    };
    match session.as_slice() {
        [Value::ChronoDateTimeUtc(revoked_at), Value::ChronoDateTimeUtc(Some(expires_at))] => {
            Ok(Some(SessionStanding {
                revoked: revoked_at.is_some(),
                expires_at: *expires_at,
                user: crate::users::repo::to_user(user),
            }))
        }
        _ => Err(AppError::internal_msg("a session without an end")),
    }
}

/// The statement of [`session_standing`]. Every authenticated request runs it, and building it
/// with sea-query each time (thirty columns, a join) cost about as much as running it.
fn standing_statement(backend: DbBackend, id: Uuid, user: UserId) -> AppResult<Statement> {
    static STANDING: Template<2> = Template::new(
        || [Uuid::from_u128(1).into(), Uuid::from_u128(2).into()],
        |backend, [user, session]| {
            // The account's columns and two of the session's; `all` rather than `one`: a
            // primary-key lookup needs no `LIMIT ?`, a bound value SQLite would otherwise see in
            // this hottest statement.
            users::Entity::find()
                .filter(users::Column::Id.eq(user))
                .join(JoinType::InnerJoin, users::Relation::Sessions.def())
                .filter(sessions::Column::Id.eq(session))
                .column_as(sessions::Column::RevokedAt, "session_revoked_at")
                .column_as(sessions::Column::ExpiresAt, "session_expires_at")
                .build(backend)
        },
    );
    STANDING.bind(backend, [user.0.into(), id.into()])
}

/// What [`session_standing`] reads: the account, and when the session was revoked and ends.
#[derive(FromQueryResult)]
struct StandingRow {
    session_revoked_at: Option<DateTime<Utc>>,
    session_expires_at: DateTime<Utc>,
    #[sea_orm(nested)]
    user: users::Model,
}

/// Everything a new session row holds.
pub struct NewSession {
    pub id: Uuid,
    pub user_id: UserId,
    pub refresh_hash: String,
    pub device_name: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_session(db: &impl ConnectionTrait, new: NewSession) -> AppResult<Session> {
    let row = sessions::ActiveModel {
        id: Set(new.id),
        user_id: Set(new.user_id.0),
        refresh_hash: Set(new.refresh_hash),
        previous_refresh_hash: Set(None),
        generation: Set(0),
        rotated_at: Set(new.now),
        device_name: Set(new.device_name),
        user_agent: Set(new.user_agent),
        ip: Set(new.ip),
        created_at: Set(new.now),
        last_used_at: Set(new.now),
        expires_at: Set(new.expires_at),
        revoked_at: Set(None),
        revoked_reason: Set(None),
    };
    let row = row.insert(db).await.map_err(AppError::internal)?;
    Ok(to_session(&row))
}

pub async fn find_session(db: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<SessionRecord>> {
    let row = sessions::Entity::find_by_id(id).one(db).await.map_err(AppError::internal)?;
    Ok(row.map(|row| SessionRecord {
        session: to_session(&row),
        refresh_hash: row.refresh_hash,
        previous_refresh_hash: row.previous_refresh_hash,
        rotated_at: row.rotated_at,
        revoked: row.revoked_at.is_some(),
    }))
}

/// Replaces the refresh hash only if it is still `expected` and the session is live; false
/// when another refresh got there first (or the session was revoked meanwhile).
pub async fn rotate_refresh(
    db: &impl ConnectionTrait,
    id: Uuid,
    expected: &str,
    new_hash: &str,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let result = sessions::Entity::update_many()
        .col_expr(sessions::Column::PreviousRefreshHash, Expr::value(expected.to_owned()))
        .col_expr(sessions::Column::RefreshHash, Expr::value(new_hash.to_owned()))
        .col_expr(sessions::Column::Generation, Expr::col(sessions::Column::Generation).add(1))
        .col_expr(sessions::Column::RotatedAt, Expr::value(now))
        .col_expr(sessions::Column::LastUsedAt, Expr::value(now))
        .filter(sessions::Column::Id.eq(id))
        .filter(sessions::Column::RefreshHash.eq(expected))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(db)
        .await
        .map_err(AppError::internal)?;
    Ok(result.rows_affected == 1)
}

/// Revokes one live session; false if it was not live.
pub async fn revoke_session(db: &impl ConnectionTrait, id: Uuid, reason: &str, now: DateTime<Utc>) -> AppResult<bool> {
    let result = sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .col_expr(sessions::Column::RevokedReason, Expr::value(reason.to_owned()))
        .filter(sessions::Column::Id.eq(id))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(db)
        .await
        .map_err(AppError::internal)?;
    Ok(result.rows_affected == 1)
}

/// Revokes every live session of `user` but `except`, in one statement; returns the ids it
/// revoked. Runs on the caller's connection, so it joins the caller's transaction.
pub async fn revoke_all_sessions(
    db: &impl ConnectionTrait,
    user: UserId,
    except: Option<Uuid>,
    reason: &str,
    now: DateTime<Utc>,
) -> AppResult<Vec<Uuid>> {
    let ids: Vec<Uuid> =
        live_sessions(db, user, now).await?.into_iter().map(|s| s.id).filter(|id| Some(*id) != except).collect();
    sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .col_expr(sessions::Column::RevokedReason, Expr::value(reason.to_owned()))
        .filter(sessions::Column::Id.is_in(ids.clone()))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(db)
        .await
        .map_err(AppError::internal)?;
    Ok(ids)
}

/// The user's unrevoked sessions that have not passed their absolute expiry.
pub async fn live_sessions(db: &impl ConnectionTrait, user: UserId, now: DateTime<Utc>) -> AppResult<Vec<Session>> {
    let rows = sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(user.0))
        .filter(sessions::Column::RevokedAt.is_null())
        .filter(sessions::Column::ExpiresAt.gt(now))
        .order_by_desc(sessions::Column::LastUsedAt)
        .all(db)
        .await
        .map_err(AppError::internal)?;
    Ok(rows.iter().map(to_session).collect())
}
