//! Landing pages for links in mail, used when no frontend URL is configured. GET only shows a
//! page with a button; the token is spent by the POST that button sends, so mail scanners that
//! follow links do not burn it. Pages send no referrer (the token is in the URL) and allow no
//! scripts or framing.

use std::sync::Arc;

use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use serde::Deserialize;

use super::HttpState;
use crate::{
    domain::{MAX_PASSWORD_CHARS, Password},
    error::AppError,
};

#[derive(Deserialize)]
pub struct TokenParam {
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct ResetForm {
    token: String,
    new_password: String,
}

/// A token as it can appear in our links: 43 URL-safe characters. Anything else is refused
/// before it reaches a page, so nothing a client sends is echoed into HTML.
fn plausible(token: Option<&str>) -> Option<&str> {
    token.filter(|t| t.len() == 43 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}\
         button{{font-size:1rem;padding:.6rem 1.2rem}}input{{font-size:1rem;padding:.4rem;width:100%}}</style>\
         </head><body><h1>{title}</h1>{body}</body></html>"
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    response
}

fn invalid_link() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Link not valid",
        "<p>This link is invalid, was already used or has expired. Request a new one.</p>",
    )
}

/// GET /verify-email?token=…: a button that confirms.
pub async fn verify_email_page(Query(query): Query<TokenParam>) -> Response {
    let Some(token) = plausible(query.token.as_deref()) else { return invalid_link() };
    page(
        StatusCode::OK,
        "Confirm your email",
        &format!(
            "<p>Press the button to confirm this email address.</p>\
             <form method=\"post\" action=\"/verify-email\"><input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <button type=\"submit\">Confirm my email</button></form>"
        ),
    )
}

/// POST /verify-email: spends the token.
pub async fn verify_email_submit(State(state): State<Arc<HttpState>>, Form(form): Form<TokenParam>) -> Response {
    let Some(token) = plausible(form.token.as_deref()) else { return invalid_link() };
    match state.services.accounts.verify_email_by_token(token).await {
        Ok(_) => page(
            StatusCode::OK,
            "Email confirmed",
            "<p>Your email address is confirmed. You can close this page and sign in.</p>",
        ),
        Err(AppError::Conflict { .. }) => page(
            StatusCode::CONFLICT,
            "Address in use",
            "<p>Another account uses this address now. Sign in and choose another one.</p>",
        ),
        Err(AppError::Unavailable(e)) => {
            tracing::warn!(error = %e, "email verification from the landing page failed");
            page(StatusCode::SERVICE_UNAVAILABLE, "Try again soon", "<p>Please try again in a minute.</p>")
        }
        Err(AppError::Internal(e)) => {
            tracing::error!(error = %e, "email verification from the landing page failed");
            page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "<p>Please try again later.</p>")
        }
        Err(_) => invalid_link(),
    }
}

/// GET /reset-password?token=…: a form for the new password.
pub async fn reset_password_page(State(state): State<Arc<HttpState>>, Query(query): Query<TokenParam>) -> Response {
    let Some(token) = plausible(query.token.as_deref()) else { return invalid_link() };
    page(StatusCode::OK, "Choose a new password", &reset_form(&state, token, ""))
}

/// The new-password form; its length bounds are the configured policy's, so the browser's
/// own check agrees with the server's.
fn reset_form(state: &HttpState, token: &str, problem: &str) -> String {
    let min = state.services.accounts.policy.min_length;
    format!(
        "{problem}<form method=\"post\" action=\"/reset-password\"><input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <p><label>New password<br><input type=\"password\" name=\"new_password\" autocomplete=\"new-password\" \
         minlength=\"{min}\" maxlength=\"{MAX_PASSWORD_CHARS}\" required></label></p><button type=\"submit\">Set password</button></form>"
    )
}

/// POST /reset-password: sets the password and spends the token.
pub async fn reset_password_submit(State(state): State<Arc<HttpState>>, Form(form): Form<ResetForm>) -> Response {
    let Some(token) = plausible(Some(&form.token)) else { return invalid_link() };
    let outcome = match Password::parse(form.new_password, "newPassword") {
        Ok(password) => state.services.accounts.reset_password(token, password).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => page(
            StatusCode::OK,
            "Password changed",
            "<p>Your password is changed and every session was signed out. Sign in with the new password.</p>",
        ),
        Err(AppError::BadUserInput { field: "newPassword", message }) => {
            // The policy's reasons are fixed texts of ours; escape anyway.
            let reason = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
            page(
                StatusCode::BAD_REQUEST,
                "Choose a new password",
                &reset_form(&state, token, &format!("<p><strong>The new {reason}.</strong></p>")),
            )
        }
        Err(AppError::Unavailable(e)) => {
            tracing::warn!(error = %e, "password reset from the landing page failed");
            page(StatusCode::SERVICE_UNAVAILABLE, "Try again soon", "<p>Please try again in a minute.</p>")
        }
        Err(AppError::Internal(e)) => {
            tracing::error!(error = %e, "password reset from the landing page failed");
            page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "<p>Please try again later.</p>")
        }
        Err(_) => invalid_link(),
    }
}
