//! The users table, below the features: the account record that registration creates, logins
//! read, profiles edit and admins manage. `repo` holds every query on it; this module holds the
//! rules about users that more than one feature enforces.

pub mod repo;

use sea_orm::ConnectionTrait;

use crate::{
    domain::{Role, User},
    error::{AppError, AppResult},
};

/// Refuses (FORBIDDEN with `why`) when `target` is the last active superuser, so that somebody
/// can always administer the server. Call it inside the transaction of the change: the count
/// locks the superuser rows (FOR UPDATE on PostgreSQL; SQLite has one writer), so two
/// superusers acting at once cannot both pass.
pub async fn keep_a_superuser(db: &impl ConnectionTrait, target: &User, why: &'static str) -> AppResult<()> {
    if target.role == Role::Superuser && target.is_active && repo::count_active_superusers(db).await? <= 1 {
        return Err(AppError::NotAllowed(why));
    }
    Ok(())
}
