//! sea-orm entities, one per table. Only `repo.rs` files import them: an entity is never a
//! GraphQL type, so a column such as `password_hash` cannot leak into a response.

pub mod audit_events;
pub mod server_keys;
pub mod sessions;
pub mod social_identities;
pub mod users;
