//! User administration: the admin user directory (`users`, a Relay connection with filter and
//! order), reading one user (`user(id)`), and the admin mutations (create, update, activate,
//! deactivate, delete, set role) whose rules `lifecycle` documents.
//!
//! Invariants of the directory: pages are cut by keyset, never by offset. A cursor carries the
//! sort key of its row (the ordered column's value and the id), so it names a position in the
//! order rather than a row number: rows inserted or deleted elsewhere, and the deletion of the
//! cursor's own row, never shift or break the next page. Every ordering ends with the id
//! (UUIDv7) as tiebreaker, so the order is total; empty values (no email, never logged in) sort
//! last in both directions, the same on SQLite and PostgreSQL.

pub mod graphql;
pub mod lifecycle;
pub mod model;
pub mod repo;
pub mod service;
