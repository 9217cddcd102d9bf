//! The caller's own profile: editing it, and deactivating the account.

use sea_orm::TransactionTrait;
use serde_json::json;

use super::AccountService;
use crate::{
    audit::{
        self,
        model::{AuditKind, NewAuditEvent},
    },
    client::ClientInfo,
    domain::{Email, Password, ProfileChanges, User, UserId},
    error::{AppError, AppResult},
    sessions, users,
    users::repo,
};

/// What `update_profile` did besides saving fields.
pub struct ProfileUpdate {
    pub user: User,
    /// A new email waits for verification (it takes effect once verified).
    pub email_change_pending: bool,
}

impl AccountService {
    /// Saves the caller's profile changes. A new phone is stored unverified; a new email only
    /// starts a verified change (see `request_email_change`). Changing either needs the
    /// current password on accounts that have one.
    ///
    /// Errors: BAD_USER_INPUT, CONFLICT (`username`), INVALID_CREDENTIALS, RATE_LIMITED.
    pub async fn update_profile(
        &self,
        id: UserId,
        changes: ProfileChanges,
        new_email: Option<Email>,
        password: Option<Password>,
        client: &ClientInfo,
    ) -> AppResult<ProfileUpdate> {
        let user = self.get(id).await?;
        let phone_changes =
            changes.phone.as_ref().is_some_and(|p| p.as_ref().map(|p| p.as_str()) != user.phone.as_deref());
        let email_changes = new_email.as_ref().is_some_and(|e| Some(e.as_str()) != user.email.as_deref());
        if phone_changes || email_changes {
            self.confirm_password(id, password.clone()).await?;
        }
        let fields = changes.field_names();
        if !fields.is_empty() {
            let now = self.clock.now();
            let txn = self.db.begin().await.map_err(AppError::internal)?;
            repo::update_profile(&txn, id, &changes, now).await?;
            let event = NewAuditEvent::new(AuditKind::ProfileUpdated, now)
                .user(id)
                .actor(Some(id))
                .client(client)
                .detail(json!({ "fields": fields }));
            audit::record(&txn, event).await?;
            txn.commit().await.map_err(AppError::internal)?;
        }
        if let Some(email) = new_email.filter(|_| email_changes) {
            self.request_email_change(id, &email, password).await?;
        }
        Ok(ProfileUpdate { user: self.get(id).await?, email_change_pending: email_changes })
    }

    /// Deactivates the caller's own account after checking the password; every session ends.
    /// The last active superuser cannot leave the server without an administrator: the rule
    /// is checked under the same lock as the admin path.
    ///
    /// Errors: INVALID_CREDENTIALS, FORBIDDEN (the last active superuser).
    pub async fn deactivate_self(&self, id: UserId, password: Password, client: &ClientInfo) -> AppResult<()> {
        let stored = repo::password_hash(&self.db, id).await?;
        if !self.passwords.verify(password.secret(), stored).await? {
            return Err(AppError::InvalidCredentials);
        }
        let now = self.clock.now();
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        let me = repo::find_by_id(&txn, id).await?.ok_or(AppError::Unauthenticated)?;
        users::keep_a_superuser(&txn, &me, "the last active superuser cannot deactivate their own account").await?;
        repo::set_active(&txn, id, false, now).await?;
        let event = NewAuditEvent::new(AuditKind::Deactivated, now).user(id).actor(Some(id)).client(client);
        sessions::end_all(&txn, id, None, "deactivated", now, event).await?;
        txn.commit().await.map_err(AppError::internal)
    }
}
