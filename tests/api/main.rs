//! One integration-test binary: every module drives the real application over HTTP.

mod helpers;

mod cli;
mod login;
mod register;
mod schema;
mod sessions;
mod tokens;
mod transport;
