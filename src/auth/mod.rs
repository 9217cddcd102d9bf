//! Authentication: password login, one-time-code challenges, access tokens, refresh-token
//! rotation and sessions. Other features learn who is calling from [`service::AuthService::authenticate`].

pub mod graphql;
mod jwt_crypto;
pub mod keys;
pub mod model;
pub mod repo;
pub mod service;
pub mod tokens;
