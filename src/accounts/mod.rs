//! Accounts: registration, the user profile and the parsed types every feature shares (Email,
//! Password, Phone, UserId, ...). Verification, recovery and profile editing build on this.

pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
