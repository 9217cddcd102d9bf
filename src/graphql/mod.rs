//! Shared GraphQL support, below the feature roots and above the services: the limits every
//! document runs under, the mapping of errors to `extensions.code`, the Viewer and guards, the
//! scalars, and the object types several features return (`User`, `Session`) with the user
//! inputs they share. A feature's graphql.rs imports from here, never from another feature's.

pub mod errors;
pub mod grant;
pub mod guards;
pub mod limits;
pub mod scalars;
pub mod session;
pub mod user;
pub mod viewer;

/// Complexity charged for each mutation that hashes a password, sends a message or checks a
/// guessable secret. With the default limit of 1000, one document holds at most two of them,
/// however they are aliased: the rest is refused before any resolver runs.
pub const AUTH_MUTATION_COST: usize = 400;
