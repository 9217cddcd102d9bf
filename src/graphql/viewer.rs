//! Who is calling: resolved once per request by the HTTP layer from the bearer token and put
//! into the request data. Resolvers and guards read it; none of them parse tokens.

use crate::{
    domain::Principal,
    error::{AppError, AppResult},
};

/// The caller of one GraphQL request.
#[derive(Debug, Clone, Copy)]
pub enum Viewer {
    /// No credentials were presented.
    Anonymous,
    /// Credentials were presented and refused (malformed, expired, wrong signature, revoked).
    Rejected,
    /// A valid access token of a live session.
    Authenticated(Principal),
}

impl Viewer {
    /// The principal, or UNAUTHENTICATED.
    pub fn require(&self) -> AppResult<Principal> {
        match self {
            Self::Authenticated(principal) => Ok(*principal),
            _ => Err(AppError::Unauthenticated),
        }
    }

    /// The principal, if any.
    pub fn principal(&self) -> Option<Principal> {
        match self {
            Self::Authenticated(principal) => Some(*principal),
            _ => None,
        }
    }
}
