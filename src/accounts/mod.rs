//! Accounts: registration, the user profile, email and phone verification, password change
//! and reset. The parsed user types it works with live in `crate::domain`, below every feature.

pub mod graphql;
pub mod service;
