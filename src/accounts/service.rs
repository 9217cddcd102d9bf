//! Account rules: registration and reading users.
//!
//! Registration never tells a stranger whether an address has an account (OWASP Authentication
//! Cheat Sheet, "Account enumeration"): a taken address gets the same answer as a new one, after
//! the same hashing work, and its owner is told by mail instead.

use std::{sync::Arc, time::Duration};

use sea_orm::{DatabaseConnection, TransactionTrait};

use super::{
    model::{Email, NewUser, Password, Role, User, UserId},
    repo,
};
use crate::{
    client::ClientInfo,
    clock::Clock,
    error::{AppError, AppResult},
    notify::{mail::Mailer, templates},
    security::{
        password_policy::PasswordPolicy,
        passwords::Passwords,
        rate_limit::{RateLimiter, Rule},
    },
};

/// What the account service needs from the application.
#[derive(Clone)]
pub struct AccountService {
    pub(crate) db: DatabaseConnection,
    pub(crate) passwords: Passwords,
    pub(crate) policy: PasswordPolicy,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) mailer: Arc<dyn Mailer>,
    pub(crate) limiter: RateLimiter,
    pub(crate) register_per_ip: u32,
}

impl AccountService {
    /// Registers a user, or (for a taken email) answers as if it had and mails the owner.
    ///
    /// Errors: BAD_USER_INPUT (password policy), CONFLICT on a taken username, RATE_LIMITED.
    pub async fn register(&self, new: NewUser, client: &ClientInfo) -> AppResult<User> {
        let rule = Rule { name: "register-ip", limit: self.register_per_ip, window: Duration::from_secs(3600) };
        self.limiter.hit(rule, client.ip_or_unknown()).await?;
        self.policy
            .check(new.password.expose(), &new.personal_words())
            .map_err(|reason| AppError::bad_input("password", format!("password {reason}")))?;
        // A username is public, so a taken one may be reported; checked before the email so
        // that the answer never depends on whether the email exists.
        if let Some(username) = &new.username
            && repo::username_taken(&self.db, username.as_str()).await?
        {
            return Err(AppError::Conflict { field: "username" });
        }
        let hash = self.passwords.hash(new.password.secret()).await?;
        let row = repo::new_row(&new, Some(hash), Role::User, self.clock.now());
        match repo::insert(&self.db, row.clone()).await {
            Err(AppError::Conflict { field: "email" }) => {
                self.notify_owner_of_attempt(&new.email);
                Ok(repo::to_user(row))
            }
            other => other,
        }
    }

    /// The user with `id`.
    ///
    /// Errors: NOT_FOUND.
    pub async fn get(&self, id: UserId) -> AppResult<User> {
        repo::find_by_id(&self.db, id).await?.ok_or(AppError::NotFound("user"))
    }

    /// Creates a superuser, or with `promote` raises an existing account to superuser.
    ///
    /// Errors: CONFLICT when the email exists and `promote` is false; BAD_USER_INPUT (policy).
    pub async fn create_superuser(&self, email: Email, password: Password, promote: bool) -> AppResult<User> {
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        let now = self.clock.now();
        if let Some(existing) = repo::find_credentials(&txn, email.as_str()).await? {
            if !promote {
                return Err(AppError::Conflict { field: "email" });
            }
            repo::set_role(&txn, existing.user.id, Role::Superuser, now).await?;
            txn.commit().await.map_err(AppError::internal)?;
            return self.get(existing.user.id).await;
        }
        self.policy
            .check(password.expose(), &[email.local_part()])
            .map_err(|reason| AppError::bad_input("password", format!("password {reason}")))?;
        let new = NewUser {
            email,
            password,
            username: None,
            first_name: None,
            last_name: None,
            phone: None,
            date_of_birth: None,
            gender: None,
        };
        let hash = self.passwords.hash(new.password.secret()).await?;
        let user = repo::insert(&txn, repo::new_row(&new, Some(hash), Role::Superuser, now)).await?;
        txn.commit().await.map_err(AppError::internal)?;
        Ok(user)
    }

    /// Mails the owner of `email` in the background, so the answer takes as long as a real
    /// registration does.
    fn notify_owner_of_attempt(&self, email: &Email) {
        let mailer = Arc::clone(&self.mailer);
        let mail = templates::registration_attempt(&self.policy.product_name, email.as_str());
        tokio::spawn(async move {
            if let Err(e) = mailer.send(mail).await {
                tracing::error!(error = %e, "could not send the registration-attempt notice");
            }
        });
    }
}
