//! One integration-test binary: every module drives the real application over HTTP.

mod helpers;
mod support;

mod admin;
mod avatars;
mod captcha;
mod cli;
mod cookies;
mod delivery;
mod directory;
mod encrypted_tokens;
mod graphiql;
mod hostile_input;
mod import;
mod instances;
mod introspection;
mod keys;
mod layers;
mod lockout;
mod login;
mod metrics;
mod outages;
mod phone;
mod production;
mod rate_limits;
mod readme_operations;
mod recovery;
mod register;
mod restarts;
mod schema;
mod sessions;
mod social;
mod token_info;
mod tokens;
mod transport;
mod verification;
