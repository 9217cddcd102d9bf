//! The audit log: who did what to which account, from where, and when. Events are written in
//! the same transaction as the change they record, so the log and the data never disagree; a
//! detail never holds a secret (no password, code, token or hash). Admins read it through
//! `auditEvents`; an optional retention period prunes old events in the background.

pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
