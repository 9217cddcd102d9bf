//! Named authorization rules, used as async-graphql guards on fields and mutations.

use async_graphql::{Context, Guard, Result};

use super::viewer::Viewer;
use crate::{
    accounts::model::{Role, UserId},
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
