//! The one place errors become GraphQL errors. An [`AppError`] travels inside the GraphQL error
//! as its source; here it gets its `extensions.code` (plus `field`, `retryAfter` or
//! `attemptsRemaining`). INTERNAL errors are logged with their cause chain and returned with no
//! detail. Errors raised by async-graphql itself (parse, validation, limits) are request errors.

use async_graphql::{Response, ServerError};

use crate::{error::AppError, telemetry};

/// Codes for errors that do not come from a service.
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";

/// Fills in codes on every error of `response` and masks internal ones.
pub fn finalize(response: &mut Response) {
    for error in &mut response.errors {
        annotate(error);
    }
}

fn annotate(error: &mut ServerError) {
    let mut extensions = error.extensions.take().unwrap_or_default();
    match error.source::<AppError>() {
        Some(app) => {
            extensions.set("code", app.code());
            match app {
                AppError::BadUserInput { field, .. } | AppError::Conflict { field } => extensions.set("field", *field),
                AppError::RateLimited { retry_after } | AppError::AccountLocked { retry_after } => {
                    extensions.set("retryAfter", *retry_after)
                }
                AppError::OtpInvalid { attempts_remaining } => extensions.set("attemptsRemaining", *attempts_remaining),
                AppError::Provider(provider) => extensions.set("provider", provider.as_str()),
                AppError::Internal(source) => {
                    if from_database(source.as_ref()) {
                        telemetry::metrics().store_error("database");
                    }
                    tracing::error!(error = %chain(source.as_ref()), path = ?error.path, "internal error");
                    error.message = app.to_string();
                }
                AppError::Unavailable(source) => {
                    telemetry::metrics().store_error("kv");
                    tracing::warn!(error = %chain(source.as_ref()), path = ?error.path, "a shared part is unreachable");
                    error.message = app.to_string();
                }
                _ => {}
            }
        }
        None => {
            // Argument coercion fails at a field (has a path); parse and validation failures
            // concern the whole request.
            let code = if error.path.is_empty() { VALIDATION_FAILED } else { "BAD_USER_INPUT" };
            if extensions.get("code").is_none() {
                extensions.set("code", code);
            }
        }
    }
    error.extensions = Some(extensions);
}

/// Whether a database error is among the causes.
fn from_database(source: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(source);
    while let Some(error) = next {
        if error.is::<sea_orm::DbErr>() {
            return true;
        }
        next = error.source();
    }
    false
}

/// An error and its causes, one line.
fn chain(source: &(dyn std::error::Error + Send + Sync)) -> String {
    let mut chain = source.to_string();
    let mut next = source.source();
    while let Some(cause) = next {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        next = cause.source();
    }
    chain
}

/// Why a request produced nothing, when every error it got is a refusal to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every error is RATE_LIMITED; the longest `retryAfter`.
    RateLimited { retry_after: u64 },
    /// Every error is RATE_LIMITED or SERVICE_UNAVAILABLE, and at least one is the latter.
    Unavailable,
}

/// The refusal when no root field produced data and every error is RATE_LIMITED or
/// SERVICE_UNAVAILABLE: the request did nothing but meet limits or an outage.
pub fn only_refused(response: &Response) -> Option<Refusal> {
    let produced_nothing = match &response.data {
        async_graphql::Value::Null => true,
        async_graphql::Value::Object(fields) => fields.values().all(|v| *v == async_graphql::Value::Null),
        _ => false,
    };
    if !produced_nothing || response.errors.is_empty() {
        return None;
    }
    response.errors.iter().try_fold(None, |so_far: Option<Refusal>, error| {
        let this = match error.source::<AppError>() {
            Some(AppError::RateLimited { retry_after }) => Refusal::RateLimited { retry_after: *retry_after },
            Some(AppError::Unavailable(_)) => Refusal::Unavailable,
            _ => return None,
        };
        Some(Some(match (so_far, this) {
            (None, this) => this,
            (Some(Refusal::RateLimited { retry_after: a }), Refusal::RateLimited { retry_after: b }) => {
                Refusal::RateLimited { retry_after: a.max(b) }
            }
            _ => Refusal::Unavailable,
        }))
    })?
}

/// Whether the response failed before execution (parse or validation), which the GraphQL over
/// HTTP spec answers with 400 under `application/graphql-response+json`.
pub fn is_request_error(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty() && e.source::<AppError>().is_none())
}
