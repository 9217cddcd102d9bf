//! The answers of every sign-in (password, code, refresh, provider): tokens, or a challenge
//! when a second step is due. Shared here because several features return them.

use async_graphql::{Context, ID, Result, SimpleObject, Union};
use axum::http::header::SET_COOKIE;
use chrono::{DateTime, Utc};

use super::{session::SessionView, user::UserView};
use crate::{
    auth::model::{AuthGrant, ChallengeView, LoginOutcome, OtpChannel},
    security::cookies::RequestCookies,
    services::Services,
};

/// Tokens for a logged-in session. The token strings are nullable so that cookie-based
/// clients can receive them as cookies instead.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// A JWT for `Authorization: Bearer`; verify it with /.well-known/jwks.json.
    pub access_token: Option<String>,
    /// Opaque, single use: each refresh returns a new one. Reusing an old one ends the session.
    pub refresh_token: Option<String>,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user: UserView,
    pub session: SessionView,
}

impl AuthPayload {
    /// The payload of a grant. A request that asked for cookies
    /// (`X-Idgate-Token-Transport: cookie`) gets the tokens as HttpOnly cookies instead, and
    /// null token fields, so page scripts never see them.
    pub fn deliver(ctx: &Context<'_>, grant: AuthGrant) -> Result<Self> {
        let in_cookies = ctx.data::<RequestCookies>().is_ok_and(|c| c.wants_cookies);
        if in_cookies {
            for cookie in ctx.data::<Services>()?.cookies.grant(&grant.access_token, &grant.refresh_token) {
                ctx.append_http_header(SET_COOKIE, cookie);
            }
        }
        let session = SessionView::of_this_request(grant.session);
        Ok(Self {
            access_token: (!in_cookies).then_some(grant.access_token),
            refresh_token: (!in_cookies).then_some(grant.refresh_token),
            token_type: "Bearer".into(),
            expires_in: grant.expires_in,
            user: UserView::owner(grant.user),
            session,
        })
    }
}

/// A second step is due: a code was sent; complete it with `verifyOtp`.
#[derive(SimpleObject)]
pub struct OtpChallenge {
    pub challenge_id: ID,
    pub channel: OtpChannel,
    /// Where the code went, masked (`a•••e@example.com`).
    pub destination: String,
    pub expires_at: DateTime<Utc>,
    /// When `resendOtp` may be called.
    pub resend_available_at: DateTime<Utc>,
}

impl From<ChallengeView> for OtpChallenge {
    fn from(view: ChallengeView) -> Self {
        Self {
            challenge_id: ID(view.challenge_id),
            channel: view.channel,
            destination: view.destination,
            expires_at: view.expires_at,
            resend_available_at: view.resend_available_at,
        }
    }
}

#[derive(Union)]
pub enum LoginResult {
    AuthPayload(Box<AuthPayload>),
    OtpChallenge(OtpChallenge),
}

impl LoginResult {
    /// Tokens (as [`AuthPayload::deliver`] hands them out) or the challenge that was sent.
    pub fn deliver(ctx: &Context<'_>, outcome: LoginOutcome) -> Result<Self> {
        Ok(match outcome {
            LoginOutcome::Granted(grant) => Self::AuthPayload(Box::new(AuthPayload::deliver(ctx, *grant)?)),
            LoginOutcome::ChallengeSent(view) => Self::OtpChallenge(view.into()),
        })
    }
}
