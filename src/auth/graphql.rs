//! GraphQL face of authentication: `login`, `verifyOtp`, `resendOtp`, `refresh`, `logout`,
//! `logoutAll`, `revokeSession`, `mySessions` and `authConfig`.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use axum::http::header::SET_COOKIE;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{TokenType, parse_device_name};
use crate::{
    client::ClientInfo,
    domain::{Email, Password, Phone, Role},
    error::AppError,
    graphql::session::SessionView,
    graphql::{
        AUTH_MUTATION_COST,
        grant::{AuthPayload, LoginResult, OtpChallenge},
        guards::SignedIn,
        viewer::Viewer,
    },
    security::cookies::RequestCookies,
    services::Services,
    social::model::ProviderKind,
};

#[derive(InputObject)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
    /// A name for this device in the session list, like "Alice's phone".
    pub device_name: Option<String>,
    /// The CAPTCHA widget's answer, when `authConfig.captcha` asks for one.
    pub captcha_token: Option<String>,
}

#[derive(InputObject)]
pub struct VerifyOtpInput {
    pub challenge_id: ID,
    /// The 6-digit code.
    pub code: String,
    pub device_name: Option<String>,
}

/// The password rules, for forms to show before submitting.
#[derive(SimpleObject)]
pub struct PasswordPolicyView {
    pub min_length: usize,
    pub max_length: usize,
    /// zxcvbn score (0-4) a password must reach.
    pub min_strength: u8,
}

/// What a client needs to know before anyone logs in.
#[derive(SimpleObject)]
pub struct AuthConfig {
    /// Whether `login` answers with an `OtpChallenge` before tokens.
    pub login_requires_otp: bool,
    pub password_policy: PasswordPolicyView,
    /// Seconds an access token lives.
    pub access_token_ttl: u64,
    /// Seconds a session lives at most.
    pub session_ttl: u64,
    /// Seconds of inactivity that end a session (null: no inactivity limit).
    pub session_idle_timeout: Option<u64>,
    /// Seconds a code lives.
    pub otp_ttl: u64,
    /// Whether login is refused until the email is verified.
    pub email_verification_required: bool,
    /// Whether `requestPhoneLogin` creates accounts for unknown numbers.
    pub phone_signup: bool,
    /// The CAPTCHA a frontend must show, or null when none is ever asked for.
    pub captcha: Option<CaptchaConfig>,
    /// The enabled sign-in providers (`socialAuth`), in a stable order.
    pub social_providers: Vec<SocialProvider>,
}

/// A sign-in provider a frontend can offer.
#[derive(SimpleObject)]
pub struct SocialProvider {
    /// The value for `provider` (`GOOGLE`, `FACEBOOK`, `GITHUB`, or a configured OpenID
    /// Connect provider's name, upper-cased).
    pub name: String,
    pub kind: ProviderKind,
    /// Whether `socialAuthStart` (the redirect flow) is available.
    pub redirect_flow: bool,
    /// Whether `socialAuth` takes a token from the provider's SDK: an `idToken` for OpenID
    /// Connect providers, an `accessToken` for GitHub and Facebook.
    pub token_flow: bool,
}

/// How to show the CAPTCHA widget and when its token (`captchaToken`) is needed.
#[derive(SimpleObject)]
pub struct CaptchaConfig {
    /// `RECAPTCHA`, `HCAPTCHA` or `TURNSTILE`.
    pub provider: String,
    /// The site key for the widget.
    pub site_key: String,
    /// `ALWAYS` (register, login, requestPasswordReset, requestPhoneLogin) or `AFTER_FAILURES`
    /// (login, once the address or account failed too often; the error CAPTCHA_REQUIRED says so).
    pub mode: String,
}

/// Whether a token is live now. Everything but `active` is null for an inactive token.
#[derive(SimpleObject, Default)]
pub struct TokenInfo {
    /// False for a token that is malformed, expired, not ours, or whose session was revoked or
    /// whose account was deactivated since it was issued.
    pub active: bool,
    /// The user id.
    pub subject: Option<ID>,
    pub session_id: Option<ID>,
    /// The account's role now.
    pub role: Option<Role>,
    pub issued_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub token_type: Option<TokenType>,
}

#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The caller's live sessions, most recently used first.
    #[graphql(guard = "SignedIn")]
    async fn my_sessions(&self, ctx: &Context<'_>) -> Result<Vec<SessionView>> {
        let principal = ctx.data::<Viewer>()?.require()?;
        let sessions = ctx.data::<Services>()?.auth.sessions_of(principal.user_id).await?;
        Ok(sessions.into_iter().map(|session| SessionView::new(session, Some(principal.session_id))).collect())
    }

    /// Checks an access or refresh token: the token is its own credential. Unlike checking the
    /// signature against the JWKS, this sees revoked sessions and deactivated accounts.
    /// Errors: RATE_LIMITED (per client IP; each alias counts).
    async fn token_info(&self, ctx: &Context<'_>, token: String) -> Result<TokenInfo> {
        let found = ctx.data::<Services>()?.auth.token_info(&token, ctx.data::<ClientInfo>()?).await?;
        Ok(found.map_or_else(TokenInfo::default, |info| TokenInfo {
            active: true,
            subject: Some(ID(info.subject.to_string())),
            session_id: Some(ID(info.session_id.to_string())),
            role: Some(info.role),
            issued_at: Some(info.issued_at),
            expires_at: Some(info.expires_at),
            token_type: Some(info.token_type),
        }))
    }

    /// A CSRF token for cookie-authenticated mutations: send it as the `X-CSRF-Token` header.
    /// Also sets it as the readable CSRF cookie it must match.
    async fn csrf_token(&self, ctx: &Context<'_>) -> Result<String> {
        let (token, cookie) = ctx.data::<Services>()?.cookies.csrf();
        ctx.append_http_header(SET_COOKIE, cookie);
        Ok(token)
    }

    /// Public settings of this server.
    async fn auth_config(&self, ctx: &Context<'_>) -> Result<AuthConfig> {
        let services = ctx.data::<Services>()?;
        let auth = &services.auth.policy;
        let passwords = &services.accounts.policy;
        Ok(AuthConfig {
            login_requires_otp: auth.login_otp == crate::config::LoginOtp::Email,
            password_policy: PasswordPolicyView {
                min_length: passwords.min_length,
                max_length: crate::domain::MAX_PASSWORD_CHARS,
                min_strength: passwords.min_score,
            },
            access_token_ttl: services.auth.access_token_ttl(),
            session_ttl: auth.session_ttl.as_secs(),
            session_idle_timeout: auth.session_idle_timeout.map(|d| d.as_secs()),
            otp_ttl: auth.otp_ttl.as_secs(),
            email_verification_required: auth.require_email_verification,
            phone_signup: auth.phone_signup,
            captcha: services.auth.captcha.public().map(|c| CaptchaConfig {
                provider: c.provider.to_owned(),
                site_key: c.site_key,
                mode: c.mode.to_owned(),
            }),
            social_providers: services
                .social
                .providers()
                .into_iter()
                .map(|p| SocialProvider {
                    name: p.name,
                    kind: p.kind,
                    redirect_flow: p.redirect_flow,
                    token_flow: p.token_flow,
                })
                .collect(),
        })
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Checks email and password. Answers tokens, or an `OtpChallenge` when a code is due.
    /// Errors: INVALID_CREDENTIALS (unknown email and wrong password alike), ACCOUNT_INACTIVE,
    /// BAD_USER_INPUT, RATE_LIMITED.
    #[graphql(complexity = "AUTH_MUTATION_COST")]
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<LoginResult> {
        let services = ctx.data::<Services>()?;
        let email = Email::parse(&input.email).map_err(|_| AppError::InvalidCredentials)?;
        let password = Password::parse(input.password, "password")?;
        let device = parse_device_name(input.device_name)?;
        let client = ctx.data::<ClientInfo>()?;
        let outcome = services.auth.login(email, password, device, input.captcha_token.as_deref(), client).await?;
        LoginResult::deliver(ctx, outcome)
    }

    /// Completes a login with the code that was sent.
    /// Errors: OTP_INVALID (with `attemptsRemaining`), OTP_EXPIRED, BAD_USER_INPUT, RATE_LIMITED.
    #[graphql(complexity = "AUTH_MUTATION_COST")]
    async fn verify_otp(&self, ctx: &Context<'_>, input: VerifyOtpInput) -> Result<AuthPayload> {
        let services = ctx.data::<Services>()?;
        let device = parse_device_name(input.device_name)?;
        let grant =
            services.auth.verify_otp(&input.challenge_id, input.code.trim(), device, ctx.data::<ClientInfo>()?).await?;
        AuthPayload::deliver(ctx, grant)
    }

    /// Starts a passwordless login: texts a code to `phone` and answers a challenge that
    /// `verifyOtp` completes. The answer is the same whether or not the number has an account.
    /// Errors: BAD_USER_INPUT (`phone`), RATE_LIMITED.
    #[graphql(complexity = "AUTH_MUTATION_COST")]
    async fn request_phone_login(
        &self,
        ctx: &Context<'_>,
        phone: String,
        device_name: Option<String>,
        #[graphql(desc = "The CAPTCHA widget's answer, when `authConfig.captcha` asks for one.")] captcha_token: Option<
            String,
        >,
    ) -> Result<OtpChallenge> {
        let phone = Phone::parse(&phone)?;
        let device = parse_device_name(device_name)?;
        let client = ctx.data::<ClientInfo>()?;
        let view =
            ctx.data::<Services>()?.auth.request_phone_login(phone, device, captcha_token.as_deref(), client).await?;
        Ok(view.into())
    }

    /// Sends a new code for a challenge; the previous code stops working.
    /// Errors: RATE_LIMITED (with `retryAfter`), OTP_INVALID (unknown challenge).
    #[graphql(complexity = "AUTH_MUTATION_COST")]
    async fn resend_otp(&self, ctx: &Context<'_>, challenge_id: ID) -> Result<OtpChallenge> {
        let view = ctx.data::<Services>()?.auth.resend_otp(&challenge_id).await?;
        Ok(view.into())
    }

    /// Exchanges a refresh token for new tokens; the presented one stops working.
    /// Errors: UNAUTHENTICATED (also when a rotated token is reused: the session is revoked).
    #[graphql(complexity = "AUTH_MUTATION_COST")]
    async fn refresh(&self, ctx: &Context<'_>, refresh_token: Option<String>) -> Result<AuthPayload> {
        let cookie = ctx.data::<RequestCookies>().ok().and_then(|c| c.refresh.clone());
        let token = refresh_token.or(cookie).ok_or(AppError::Unauthenticated)?;
        let grant = ctx.data::<Services>()?.auth.refresh(&token, ctx.data::<ClientInfo>()?).await?;
        AuthPayload::deliver(ctx, grant)
    }

    /// Ends the calling session (named by the bearer token, or by `refreshToken`). Its access
    /// tokens stop working at once. Errors: UNAUTHENTICATED.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: Option<String>) -> Result<bool> {
        let caller = ctx.data::<Viewer>()?.principal();
        let cookies = ctx.data::<RequestCookies>().ok();
        let from_cookie = cookies.and_then(|c| c.refresh.clone()).filter(|_| caller.is_none());
        let services = ctx.data::<Services>()?;
        services.auth.logout(caller, refresh_token.or(from_cookie).as_deref()).await?;
        if cookies.is_some_and(|c| c.carry_credentials() || c.wants_cookies) {
            for cookie in services.cookies.cleared() {
                ctx.append_http_header(SET_COOKIE, cookie);
            }
        }
        Ok(true)
    }

    /// Ends every session of the caller; returns how many were ended.
    #[graphql(guard = "SignedIn")]
    async fn logout_all(&self, ctx: &Context<'_>) -> Result<u64> {
        let principal = ctx.data::<Viewer>()?.require()?;
        Ok(ctx.data::<Services>()?.auth.logout_all(principal).await?)
    }

    /// Ends one of the caller's sessions. Errors: NOT_FOUND when it is not the caller's.
    #[graphql(guard = "SignedIn")]
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let principal = ctx.data::<Viewer>()?.require()?;
        let session_id = Uuid::try_parse(&id).map_err(|_| AppError::NotFound("session"))?;
        ctx.data::<Services>()?.auth.revoke_session(principal, session_id).await?;
        Ok(true)
    }
}
