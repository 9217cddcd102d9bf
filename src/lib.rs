//! idgate: a self-hosted identity server with a GraphQL API.
//!
//! Imports point one way, down (README "Architecture"; `tests/api/layers.rs` enforces it):
//! `app` -> `http` -> `schema` -> `<feature>/graphql.rs` -> `graphql` (shared support and
//! types) -> `services` -> `<feature>` services and repos -> `sessions`, `users`, `audit` ->
//! `security`, `notify`, `kv`, `db`, `domain`, `entity`, `config`, `clock`, `error`.
//! Services reach the outside world (KV, mail, clock, keys) only through the state
//! [`services::Services`] gives them, so tests swap time and delivery without globals.

pub mod accounts; // registration, profiles, email and phone verification, password change and reset
pub mod admin; // user administration: directory, roles, lifecycle
pub mod app; // bootstrap: settings -> services -> schema -> router, and serving
pub mod audit; // the audit log: recording, listing, retention
pub mod auth; // login, one-time-code challenges, tokens and sessions
pub mod client; // who is calling: IP and user agent
pub mod clock; // injectable wall clock
pub mod config; // settings from IDGATE_* variables, validated once
pub mod db; // connection, migrations, constraint translation
pub mod domain; // the user and its parsed parts, shared by every feature
pub mod entity; // sea-orm entities, used only by repo.rs files
pub mod error; // AppError, the one error every service returns
pub mod graphql; // shared GraphQL support: limits, errors, guards, Viewer, User and Session
pub mod http; // axum routes: /graphql, GraphiQL, health, JWKS, mail-link pages, media
pub mod identities; // social identities: (provider, subject) -> account, and the linking rule
pub mod import; // moving users in from a Django project (`idgate import-users`)
pub mod kv; // ephemeral state with TTLs: Redis or a table in the database
pub mod media; // avatar images: validation, re-encoding, storage
pub mod notify; // outgoing mail and text messages, and their templates
pub mod schema; // the schema assembled from every feature's roots
pub mod security; // password hashing pool, password policy, codes, crypto helpers
pub mod services; // Services: every feature service, wired once from the settings
pub mod sessions; // session rows and the one way to end sessions
pub mod social; // sign-in with Google, Facebook, GitHub and any OpenID Connect provider
pub mod telemetry; // Prometheus metrics, counted where things happen, read by /metrics
pub mod users; // the users table and the rules about users several features enforce
