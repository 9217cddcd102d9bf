//! What admins do to accounts: create, edit, activate, deactivate, delete, and (superusers)
//! change roles. The rules, checked inside the transaction of the change:
//! - nobody acts on their own account here (the `*Me` mutations are for that);
//! - an admin acts only on USER accounts; superusers act on anyone else;
//! - the last active superuser cannot be deactivated, demoted or deleted;
//! - only a deactivated account can be deleted.
//!
//! Every change writes its audit event in the same transaction; deactivation and deletion
//! end the account's sessions at once.

use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::json;

use super::service::AdminService;
use crate::{
    audit::{
        self,
        model::{AuditKind, NewAuditEvent},
    },
    client::ClientInfo,
    domain::{Email, NewUser, Principal, ProfileChanges, Role, User, UserId},
    error::{AppError, AppResult},
    sessions,
    users::repo as users,
};

/// What an admin may set when creating an account.
pub struct NewAccount {
    pub user: NewUser,
    pub role: Role,
    pub email_verified: bool,
}

/// What an admin may change on an account.
#[derive(Default)]
pub struct AccountChanges {
    pub profile: ProfileChanges,
    pub email: Option<Email>,
    pub email_verified: Option<bool>,
}

impl AdminService {
    /// Creates an account. Admins create USERs; superusers any role.
    ///
    /// Errors: FORBIDDEN, BAD_USER_INPUT (password policy), CONFLICT (email, username).
    pub async fn create_user(&self, actor: &Principal, new: NewAccount, client: &ClientInfo) -> AppResult<User> {
        if new.role > Role::User && actor.role < Role::Superuser {
            return Err(AppError::NotAllowed("only a superuser creates admins and superusers"));
        }
        self.policy
            .check(new.user.password.expose(), &new.user.personal_words())
            .map_err(|reason| AppError::bad_input("password", format!("password {reason}")))?;
        let hash = self.passwords.hash(new.user.password.secret()).await?;
        let now = self.clock.now();
        let mut draft = User::draft(&new.user, new.role, now);
        draft.email_verified_at = new.email_verified.then_some(now);
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        let user = users::insert(&txn, &draft, Some(hash)).await?;
        let event = NewAuditEvent::new(AuditKind::UserCreated, now)
            .user(user.id)
            .actor(Some(actor.user_id))
            .client(client)
            .detail(json!({ "role": new.role.as_str() }));
        audit::record(&txn, event).await?;
        txn.commit().await.map_err(AppError::internal)?;
        Ok(user)
    }

    /// Edits an account's profile; an admin may also set the email directly and mark it
    /// verified or not.
    ///
    /// Errors: FORBIDDEN, NOT_FOUND, CONFLICT, BAD_USER_INPUT.
    pub async fn update_user(
        &self,
        actor: &Principal,
        id: UserId,
        changes: AccountChanges,
        client: &ClientInfo,
    ) -> AppResult<User> {
        let now = self.clock.now();
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        let target = self.target(&txn, actor, id).await?;
        let mut fields = changes.profile.field_names();
        if !fields.is_empty() {
            users::update_profile(&txn, id, &changes.profile, now).await?;
        }
        if let Some(email) = &changes.email {
            let verified = changes.email_verified.unwrap_or(false);
            users::set_email(&txn, id, email.as_str(), verified.then_some(now), now).await?;
            fields.push("email");
        } else if let Some(verified) = changes.email_verified {
            let email =
                target.email.clone().ok_or_else(|| AppError::bad_input("emailVerified", "the account has no email"))?;
            users::set_email(&txn, id, &email, verified.then_some(now), now).await?;
            fields.push("emailVerified");
        }
        let event = NewAuditEvent::new(AuditKind::UserUpdated, now)
            .user(id)
            .actor(Some(actor.user_id))
            .client(client)
            .detail(json!({ "fields": fields }));
        audit::record(&txn, event).await?;
        txn.commit().await.map_err(AppError::internal)?;
        users::find_by_id(&self.db, id).await?.ok_or(AppError::NotFound("user"))
    }

    /// Reactivates an account.
    ///
    /// Errors: FORBIDDEN, NOT_FOUND.
    pub async fn activate_user(&self, actor: &Principal, id: UserId, client: &ClientInfo) -> AppResult<User> {
        self.set_active(actor, id, true, client).await
    }

    /// Deactivates an account and ends its sessions at once.
    ///
    /// Errors: FORBIDDEN (including for the last active superuser), NOT_FOUND.
    pub async fn deactivate_user(&self, actor: &Principal, id: UserId, client: &ClientInfo) -> AppResult<User> {
        self.set_active(actor, id, false, client).await
    }

    async fn set_active(&self, actor: &Principal, id: UserId, active: bool, client: &ClientInfo) -> AppResult<User> {
        let now = self.clock.now();
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        let target = self.target(&txn, actor, id).await?;
        if !active {
            crate::users::keep_a_superuser(&txn, &target, "the last active superuser cannot be deactivated").await?;
        }
        users::set_active(&txn, id, active, now).await?;
        let kind = if active { AuditKind::Activated } else { AuditKind::Deactivated };
        let event = NewAuditEvent::new(kind, now).user(id).actor(Some(actor.user_id)).client(client);
        if active {
            audit::record(&txn, event).await?;
        } else {
            sessions::end_all(&txn, id, None, "deactivated", now, event).await?;
        }
        txn.commit().await.map_err(AppError::internal)?;
        users::find_by_id(&self.db, id).await?.ok_or(AppError::NotFound("user"))
    }

    /// Ends a login lock and forgets the account's failed attempts.
    ///
    /// Errors: FORBIDDEN (the rules above), NOT_FOUND.
    pub async fn unlock_user(&self, actor: &Principal, id: UserId, client: &ClientInfo) -> AppResult<User> {
        let now = self.clock.now();
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        let target = self.target(&txn, actor, id).await?;
        users::set_locked_until(&txn, id, None, now).await?;
        let event = NewAuditEvent::new(AuditKind::AccountUnlocked, now)
            .user(id)
            .actor(Some(actor.user_id))
            .client(client)
            .detail(json!({ "via": "admin" }));
        audit::record(&txn, event).await?;
        txn.commit().await.map_err(AppError::internal)?;
        if let Some(email) = target.email.as_deref() {
            self.lockout.clear(email).await?;
        }
        users::find_by_id(&self.db, id).await?.ok_or(AppError::NotFound("user"))
    }

    /// Deletes a deactivated account: its sessions go with it, its avatar file is removed,
    /// and the audit trail keeps its id.
    ///
    /// Errors: FORBIDDEN (the rules above), CONFLICT (the account is still active), NOT_FOUND.
    pub async fn delete_user(&self, actor: &Principal, id: UserId, client: &ClientInfo) -> AppResult<()> {
        let now = self.clock.now();
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        let target = self.target(&txn, actor, id).await?;
        if target.is_active {
            return Err(AppError::WrongState("only a deactivated account can be deleted: deactivate it first"));
        }
        let avatar = users::avatar_of(&txn, id).await?;
        // Its sessions go with the row (ON DELETE CASCADE), and with them every token's standing.
        users::delete(&txn, id).await?;
        let event = NewAuditEvent::new(AuditKind::Deleted, now)
            .user(id)
            .actor(Some(actor.user_id))
            .client(client)
            .detail(json!({ "role": target.role.as_str() }));
        audit::record(&txn, event).await?;
        txn.commit().await.map_err(AppError::internal)?;
        if let Some(file) = avatar {
            self.media.delete(&file).await;
        }
        Ok(())
    }

    /// Changes an account's role (superusers only).
    ///
    /// Errors: FORBIDDEN (not a superuser, one's own role, the last active superuser), NOT_FOUND.
    pub async fn set_user_role(
        &self,
        actor: &Principal,
        id: UserId,
        role: Role,
        client: &ClientInfo,
    ) -> AppResult<User> {
        if actor.role < Role::Superuser {
            return Err(AppError::NotAllowed("only a superuser changes roles"));
        }
        let now = self.clock.now();
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        let target = self.target(&txn, actor, id).await?;
        if role < Role::Superuser {
            crate::users::keep_a_superuser(&txn, &target, "the last active superuser cannot be demoted").await?;
        }
        users::set_role(&txn, id, role, now).await?;
        let event = NewAuditEvent::new(AuditKind::RoleChanged, now)
            .user(id)
            .actor(Some(actor.user_id))
            .client(client)
            .detail(json!({ "from": target.role.as_str(), "to": role.as_str() }));
        audit::record(&txn, event).await?;
        txn.commit().await.map_err(AppError::internal)?;
        users::find_by_id(&self.db, id).await?.ok_or(AppError::NotFound("user"))
    }

    /// The account an admin action targets, after the who-may-act-on-whom rules.
    async fn target(&self, db: &impl ConnectionTrait, actor: &Principal, id: UserId) -> AppResult<User> {
        if actor.role < Role::Admin {
            return Err(AppError::Forbidden);
        }
        if actor.user_id == id {
            return Err(AppError::NotAllowed("use your own account's mutations on yourself"));
        }
        let target = users::find_by_id(db, id).await?.ok_or(AppError::NotFound("user"))?;
        if target.role >= Role::Admin && actor.role < Role::Superuser {
            return Err(AppError::NotAllowed("an admin acts only on user accounts"));
        }
        Ok(target)
    }
}
