//! The one error type services return. Each variant names the `extensions.code` a client sees;
//! the mapping to GraphQL lives in `graphql::errors`. Every `#[error]` text is safe to show to a
//! client: internal details travel only in [`AppError::Internal`]'s source, which is logged and
//! never returned.

use std::fmt;

/// A failure a client can act on, or an internal one it cannot.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// UNAUTHENTICATED: no valid credentials (missing, malformed, expired or revoked token).
    #[error("authentication required")]
    Unauthenticated,
    /// FORBIDDEN: authenticated, but not allowed.
    #[error("not allowed")]
    Forbidden,
    /// FORBIDDEN, with the rule that refused it (for admin actions).
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// BAD_USER_INPUT: an input field failed to parse; `field` names it.
    #[error("{message}")]
    BadUserInput { field: &'static str, message: String },
    /// INVALID_CREDENTIALS: wrong email or password, indistinguishably.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// OTP_INVALID: wrong, unknown or used-up code; `attempts_remaining` is 0 once it is dead.
    #[error("the code is not valid")]
    OtpInvalid { attempts_remaining: u32 },
    /// OTP_EXPIRED: the challenge existed but its time ran out.
    #[error("the code has expired")]
    OtpExpired,
    /// ACCOUNT_LOCKED: too many failures; try again after `retry_after` seconds.
    #[error("the account is temporarily locked")]
    AccountLocked { retry_after: u64 },
    /// RATE_LIMITED: slow down; try again after `retry_after` seconds.
    #[error("too many requests")]
    RateLimited { retry_after: u64 },
    /// ACCOUNT_INACTIVE: the account is deactivated.
    #[error("the account is inactive")]
    AccountInactive,
    /// EMAIL_NOT_VERIFIED: the email must be verified first.
    #[error("the email address is not verified")]
    EmailNotVerified,
    /// CAPTCHA_REQUIRED: solve a captcha and retry.
    #[error("a captcha is required")]
    CaptchaRequired,
    /// CAPTCHA_INVALID: the CAPTCHA token was refused by its provider (or is malformed).
    #[error("the captcha was not accepted; solve it again")]
    CaptchaInvalid,
    /// CAPTCHA_UNAVAILABLE: the CAPTCHA provider could not be asked; the operation did not run.
    #[error("the captcha could not be checked right now; please try again later")]
    CaptchaUnavailable,
    /// CONFLICT: a unique value is taken; `field` names it.
    #[error("{field} is already in use")]
    Conflict { field: &'static str },
    /// CONFLICT: the target is in the wrong state for this action (the caller may act, but not
    /// yet); the text says what must change first.
    #[error("{0}")]
    WrongState(&'static str),
    /// DELIVERY_FAILED: a mail or text message the user is waiting for could not be sent.
    #[error("the message could not be sent; please try again later")]
    DeliveryFailed,
    /// PROVIDER_ERROR: a sign-in provider (named, as configured) could not be reached, was too
    /// slow, or answered something unusable; nothing was created. Its detail is only logged.
    #[error("{0} could not be reached or gave an unusable answer; please try again later")]
    Provider(String),
    /// NOT_FOUND: the named thing does not exist (or is not visible to the caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// SERVICE_UNAVAILABLE: a shared part (Redis) cannot be reached, so the operation did not
    /// run (limits and codes fail closed); logged with its source, returned without detail.
    #[error("the service is temporarily unavailable; please try again later")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// INTERNAL: logged with its source chain, returned without detail.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    /// The stable client-facing code placed in `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden | Self::NotAllowed(_) => "FORBIDDEN",
            Self::BadUserInput { .. } => "BAD_USER_INPUT",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::OtpInvalid { .. } => "OTP_INVALID",
            Self::OtpExpired => "OTP_EXPIRED",
            Self::AccountLocked { .. } => "ACCOUNT_LOCKED",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::AccountInactive => "ACCOUNT_INACTIVE",
            Self::EmailNotVerified => "EMAIL_NOT_VERIFIED",
            Self::CaptchaRequired => "CAPTCHA_REQUIRED",
            Self::CaptchaInvalid => "CAPTCHA_INVALID",
            Self::CaptchaUnavailable => "CAPTCHA_UNAVAILABLE",
            Self::Conflict { .. } | Self::WrongState(_) => "CONFLICT",
            Self::DeliveryFailed => "DELIVERY_FAILED",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Provider(_) => "PROVIDER_ERROR",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// A BAD_USER_INPUT naming `field`.
    pub fn bad_input(field: &'static str, message: impl Into<String>) -> Self {
        Self::BadUserInput { field, message: message.into() }
    }

    /// Wraps any error as INTERNAL; its detail is logged, never shown.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(source.into())
    }

    /// Wraps the failure to reach a shared part as SERVICE_UNAVAILABLE; its detail is logged.
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(source.into())
    }

    /// An INTERNAL error from a message (for broken invariants with no source error).
    pub fn internal_msg(message: impl fmt::Display) -> Self {
        Self::Internal(message.to_string().into())
    }
}

/// Shorthand for service results.
pub type AppResult<T> = Result<T, AppError>;
