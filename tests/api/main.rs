//! One integration-test binary: every module drives the real application over HTTP.

mod helpers;
mod support;

mod cli;
mod delivery;
mod login;
mod phone;
mod recovery;
mod register;
mod schema;
mod sessions;
mod tokens;
mod transport;
mod verification;
