//! Named authorization rules, used as async-graphql guards on fields and mutations: signed in,
//! at least a role (admin, superuser), self or admin. Roles come from the Viewer, which holds
//! the account's role as it is now in the database, never an older token's claim.

use async_graphql::{Context, Guard, Result};

use super::viewer::Viewer;
use crate::{
    domain::{Role, UserId},
    error::AppError,
};

fn viewer<'a>(ctx: &'a Context<'_>) -> &'a Viewer {
    ctx.data_opt::<Viewer>().unwrap_or(&Viewer::Anonymous)
}

/// Passes for any caller with a valid access token.
pub struct SignedIn;

impl Guard for SignedIn {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        viewer(ctx).require()?;
        Ok(())
    }
}

/// Passes for callers whose current role is at least `0` (ADMIN or SUPERUSER).
pub struct AtLeast(pub Role);

impl AtLeast {
    /// Admins and superusers.
    pub const ADMIN: Self = Self(Role::Admin);
    /// Superusers only.
    pub const SUPERUSER: Self = Self(Role::Superuser);
}

impl Guard for AtLeast {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let principal = viewer(ctx).require()?;
        if principal.role >= self.0 {
            return Ok(());
        }
        Err(AppError::Forbidden.into())
    }
}

/// Passes for the owner of a record and for admins; `revealed` marks a value the caller
/// supplied or just proved ownership of (a registration or login answer).
pub struct SelfOrAdmin {
    owner: UserId,
    revealed: bool,
}

impl SelfOrAdmin {
    pub fn new(owner: UserId, revealed: bool) -> Self {
        Self { owner, revealed }
    }
}

impl Guard for SelfOrAdmin {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        if self.revealed {
            return Ok(());
        }
        let principal = viewer(ctx).require()?;
        if principal.user_id == self.owner || principal.role >= Role::Admin {
            return Ok(());
        }
        Err(AppError::Forbidden.into())
    }
}
