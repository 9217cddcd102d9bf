//! User administration rules. Every method takes the caller and checks the rule itself, so the
//! GraphQL guards are a first line, not the only one.
//!
//! Reading one user: a caller may read their own account, admins and superusers any account.
//! Anyone else asking for an id that is not theirs gets FORBIDDEN whether or not the id exists
//! (no lookup happens), so the answer tells them nothing about other accounts; only those
//! allowed to read any account learn that an id does not exist (NOT_FOUND).

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use super::{
    model::{PageRequest, UserFilter, UserOrder, UserPage},
    repo,
};
use crate::{
    clock::Clock,
    domain::Principal,
    domain::{Role, User, UserId},
    error::{AppError, AppResult},
    media::service::MediaService,
    security::{lockout::Lockout, password_policy::PasswordPolicy, passwords::Passwords},
};

/// What user administration needs from the application.
#[derive(Clone)]
pub struct AdminService {
    pub(crate) db: DatabaseConnection,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) passwords: Passwords,
    pub(crate) policy: PasswordPolicy,
    pub(crate) media: MediaService,
    pub(crate) lockout: Lockout,
}

impl AdminService {
    /// One page of the user directory: users matching `filter`, in `order`, cut by `page`.
    ///
    /// Errors: FORBIDDEN unless the caller is an admin or superuser.
    pub async fn list_users(
        &self,
        caller: &Principal,
        filter: &UserFilter,
        order: UserOrder,
        page: &PageRequest,
    ) -> AppResult<UserPage> {
        require_admin(caller)?;
        repo::page(&self.db, filter, order, page).await
    }

    /// How many users match `filter` (the directory's `totalCount`). Without a search this is
    /// an index count; a search scans the table.
    ///
    /// Errors: FORBIDDEN unless the caller is an admin or superuser.
    pub async fn count_users(&self, caller: &Principal, filter: &UserFilter) -> AppResult<u64> {
        require_admin(caller)?;
        repo::count(&self.db, filter).await
    }

    /// The user `id`: the caller themselves, or anyone for an admin.
    ///
    /// Errors: FORBIDDEN for another id (existing or not) unless the caller is an admin;
    /// NOT_FOUND when an admin asks for an id without an account.
    pub async fn get_user(&self, caller: &Principal, id: UserId) -> AppResult<User> {
        if caller.user_id != id {
            require_admin(caller)?;
        }
        repo::find_by_id(&self.db, id).await?.ok_or(AppError::NotFound("user"))
    }
}

fn require_admin(caller: &Principal) -> AppResult<()> {
    if caller.role >= Role::Admin { Ok(()) } else { Err(AppError::Forbidden) }
}
