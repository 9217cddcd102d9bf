//! Who is calling: resolved once per request by the HTTP layer from the bearer token and put
//! into the request data. Resolvers and guards read it; none of them parse tokens.

use std::sync::Arc;

use crate::{
    domain::{Principal, User},
    error::{AppError, AppResult},
};

/// The caller of one GraphQL request.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// No credentials were presented.
    Anonymous,
    /// Credentials were presented and refused (malformed, expired, wrong signature, revoked).
    Rejected,
    /// Credentials were presented but the store that decides about them failed: refused, yet
    /// not as UNAUTHENTICATED, which would tell the client to drop tokens that may be good.
    Unchecked,
    /// A valid access token of a live session, with the account as the check read it.
    Authenticated(Principal, Arc<User>),
}

impl Viewer {
    /// The principal, or UNAUTHENTICATED.
    pub fn require(&self) -> AppResult<Principal> {
        match self {
            Self::Authenticated(principal, _) => Ok(*principal),
            Self::Unchecked => Err(AppError::internal_msg("the access token could not be checked")),
            _ => Err(AppError::Unauthenticated),
        }
    }

    /// The principal, if any.
    pub fn principal(&self) -> Option<Principal> {
        match self {
            Self::Authenticated(principal, _) => Some(*principal),
            _ => None,
        }
    }

    /// The caller's account as read by this request's token check (the same moment as the
    /// check, so as current as a second read would be).
    pub fn account(&self) -> Option<&User> {
        match self {
            Self::Authenticated(_, account) => Some(account),
            _ => None,
        }
    }
}
