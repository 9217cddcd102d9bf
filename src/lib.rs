//! idgate: a self-hosted identity server with a GraphQL API.
//!
//! Requests flow one way: `http` -> `graphql` -> `<feature>/graphql.rs` -> `service.rs` ->
//! `repo.rs` -> `entity`. Services reach the outside world (KV, mail, clock, keys) only through
//! the [`app::Services`] value they are given, so tests swap time and delivery without globals.

pub mod accounts; // registration, profiles and the parsed user types
pub mod admin; // user administration: directory, roles, lifecycle
pub mod app; // bootstrap: settings -> database, KV, keys, services, router
pub mod audit; // the audit log: recording, listing, retention
pub mod auth; // login, one-time-code challenges, tokens and sessions
pub mod client; // who is calling: IP and user agent
pub mod clock; // injectable wall clock
pub mod config; // settings from IDGATE_* variables, validated once
pub mod db; // connection, migrations, constraint translation
pub mod entity; // sea-orm entities, used only by repo.rs files
pub mod error; // AppError, the one error every service returns
pub mod graphql; // schema assembly, limits, error mapping, the Viewer
pub mod http; // axum routes: /graphql, health, JWKS
pub mod kv; // ephemeral state with TTLs: Redis or in-process memory
pub mod media; // avatar images: validation, re-encoding, storage
pub mod notify; // outgoing mail and text messages, and their templates
pub mod security; // password hashing pool, password policy, codes, crypto helpers
