//! GraphQL face of accounts: `register`, `me` and the `User` type with its guarded fields.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::{Email, Password, Phone, ProfileChanges};
use crate::{
    client::ClientInfo,
    error::{AppError, AppResult},
    graphql::{
        AUTH_MUTATION_COST,
        guards::SignedIn,
        user::{ProfileFields, RegisterInput, UserView},
        viewer::Viewer,
    },
    services::Services,
};

#[derive(SimpleObject)]
pub struct RegisterPayload {
    pub user: UserView,
}

/// Either the token of a mailed link, or the address with its mailed code.
#[derive(InputObject)]
pub struct VerifyEmailInput {
    pub token: Option<String>,
    pub email: Option<String>,
    pub code: Option<String>,
}

#[derive(SimpleObject)]
pub struct VerifyEmailPayload {
    pub user: UserView,
}

#[derive(InputObject)]
pub struct RequestEmailChangeInput {
    pub new_email: String,
    /// Required when the account has a password.
    pub current_password: Option<String>,
}

/// A single-use token for `resetPassword`.
#[derive(SimpleObject)]
pub struct PasswordResetToken {
    pub reset_token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(InputObject)]
pub struct ResetPasswordInput {
    /// The token of the mailed link, or the one `verifyPasswordResetCode` returned.
    pub token: String,
    pub new_password: String,
}

#[derive(SimpleObject)]
pub struct VerifyPhonePayload {
    pub user: UserView,
}

/// Changes to the caller's profile. An absent field stays as it is; `null` clears it.
#[derive(InputObject)]
pub struct UpdateMeInput {
    #[graphql(flatten)]
    pub profile: ProfileFields,
    /// A new address takes effect once verified; the old one is told.
    pub email: Option<String>,
    /// Required to change the phone or email of an account with a password.
    pub current_password: Option<String>,
}

#[derive(SimpleObject)]
pub struct UpdateMePayload {
    pub user: UserView,
    /// A verification mail went to the new email; it replaces the old one once verified.
    pub email_change_pending: bool,
}

impl UpdateMeInput {
    fn changes(self, today: NaiveDate) -> AppResult<(ProfileChanges, Option<Email>, Option<Password>)> {
        let email = self.email.as_deref().map(Email::parse).transpose()?;
        let password = optional_password(self.current_password, "currentPassword")?;
        Ok((self.profile.parse(today)?, email, password))
    }
}

fn optional_password(raw: Option<String>, field: &'static str) -> AppResult<Option<Password>> {
    raw.map(|p| Password::parse(p, field)).transpose()
}

#[derive(Default)]
pub struct AccountsQuery;

#[Object]
impl AccountsQuery {
    /// The caller. Errors: UNAUTHENTICATED.
    async fn me(&self, ctx: &Context<'_>) -> Result<UserView> {
        // The token check read the account in the same query as the session.
        let viewer = ctx.data::<Viewer>()?;
        viewer.require()?;
        let account = viewer.account().ok_or(AppError::Unauthenticated)?;
        Ok(UserView::seen(account.clone()))
    }
}

#[derive(Default)]
pub struct AccountsMutation;

#[Object]
impl AccountsMutation {
    /// Creates an account. A taken email gets the same answer as a free one (its owner is told
    /// by mail), so this cannot be used to learn who has an account.
    /// `captchaToken`: the widget's answer, when `authConfig.captcha` asks for one.
    /// Errors: BAD_USER_INPUT (with `field`), CONFLICT (username), RATE_LIMITED,
    /// CAPTCHA_REQUIRED, CAPTCHA_INVALID, CAPTCHA_UNAVAILABLE.
    #[graphql(complexity = "AUTH_MUTATION_COST")]
    async fn register(
        &self,
        ctx: &Context<'_>,
        input: RegisterInput,
        captcha_token: Option<String>,
    ) -> Result<RegisterPayload> {
        let services = ctx.data::<Services>()?;
        let new = input.parse(services.clock.now().date_naive())?;
        let user = services.accounts.register(new, captcha_token.as_deref(), ctx.data::<ClientInfo>()?).await?;
        Ok(RegisterPayload { user: UserView::owner(user) })
    }

    /// Verifies an email address with the token of the mailed link, or with the address and
    /// the mailed code. Errors: BAD_USER_INPUT (`token`), OTP_INVALID, OTP_EXPIRED, CONFLICT.
    #[graphql(complexity = "AUTH_MUTATION_COST")]
    async fn verify_email(&self, ctx: &Context<'_>, input: VerifyEmailInput) -> Result<VerifyEmailPayload> {
        let accounts = &ctx.data::<Services>()?.accounts;
        let user = match input {
            VerifyEmailInput { token: Some(token), email: None, code: None } => {
                accounts.verify_email_by_token(token.trim()).await?
            }
            VerifyEmailInput { token: None, email: Some(email), code: Some(code) } => {
                accounts.verify_email_by_code(&Email::parse(&email)?, code.trim()).await?
            }
            _ => return Err(AppError::bad_input("token", "give either token, or email and code").into()),
        };
        Ok(VerifyEmailPayload { user: UserView::owner(user) })
    }

    /// Sends a new verification mail (60 s cooldown, daily cap). Answers true for every
    /// address, registered or not. Errors: RATE_LIMITED.
    #[graphql(complexity = "AUTH_MUTATION_COST")]
    async fn request_email_verification(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        let accounts = &ctx.data::<Services>()?.accounts;
        // An address that cannot exist gets the same answer as one without an account.
        if let Ok(email) = Email::parse(&email) {
            accounts.request_email_verification(&email).await?;
        }
        Ok(true)
    }

    /// Starts changing the caller's email: the new address must be verified before it takes
    /// effect, and the old one is told. Errors: INVALID_CREDENTIALS, BAD_USER_INPUT, RATE_LIMITED.
    #[graphql(guard = "SignedIn", complexity = "AUTH_MUTATION_COST")]
    async fn request_email_change(&self, ctx: &Context<'_>, input: RequestEmailChangeInput) -> Result<bool> {
        let principal = ctx.data::<Viewer>()?.require()?;
        let new_email = Email::parse(&input.new_email)
            .map_err(|_| AppError::bad_input("newEmail", "is not a valid email address"))?;
        let password = optional_password(input.current_password, "currentPassword")?;
        ctx.data::<Services>()?.accounts.request_email_change(principal.user_id, &new_email, password).await?;
        Ok(true)
    }

    /// Mails a reset link and code if the address has an account. Always answers true.
    /// `captchaToken`: the widget's answer, when `authConfig.captcha` asks for one.
    /// Errors: RATE_LIMITED, CAPTCHA_REQUIRED, CAPTCHA_INVALID, CAPTCHA_UNAVAILABLE.
    #[graphql(complexity = "AUTH_MUTATION_COST")]
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        email: String,
        captcha_token: Option<String>,
    ) -> Result<bool> {
        if let Ok(email) = Email::parse(&email) {
            let client = ctx.data::<ClientInfo>()?;
            ctx.data::<Services>()?.accounts.request_password_reset(&email, captcha_token.as_deref(), client).await?;
        }
        Ok(true)
    }

    /// Trades the mailed reset code for a single-use token for `resetPassword`.
    /// Errors: OTP_INVALID, OTP_EXPIRED, BAD_USER_INPUT (`code`).
    #[graphql(complexity = "AUTH_MUTATION_COST")]
    async fn verify_password_reset_code(
        &self,
        ctx: &Context<'_>,
        email: String,
        code: String,
    ) -> Result<PasswordResetToken> {
        let email = Email::parse(&email).map_err(|_| AppError::OtpInvalid { attempts_remaining: 0 })?;
        let (reset_token, expires_at) =
            ctx.data::<Services>()?.accounts.verify_password_reset_code(&email, code.trim()).await?;
        Ok(PasswordResetToken { reset_token, expires_at })
    }

    /// Sets a new password with a reset token; every session of the account ends.
    /// Errors: BAD_USER_INPUT (`token`, `newPassword`).
    #[graphql(complexity = "AUTH_MUTATION_COST")]
    async fn reset_password(&self, ctx: &Context<'_>, input: ResetPasswordInput) -> Result<bool> {
        let password = Password::parse(input.new_password, "newPassword")?;
        ctx.data::<Services>()?.accounts.reset_password(input.token.trim(), password).await?;
        Ok(true)
    }

    /// Changes the caller's password; their other sessions end.
    /// Errors: INVALID_CREDENTIALS, BAD_USER_INPUT (`newPassword`).
    #[graphql(guard = "SignedIn", complexity = "AUTH_MUTATION_COST")]
    async fn change_password(&self, ctx: &Context<'_>, current_password: String, new_password: String) -> Result<bool> {
        let principal = ctx.data::<Viewer>()?.require()?;
        let current = Password::parse(current_password, "currentPassword")?;
        let new_password = Password::parse(new_password, "newPassword")?;
        let accounts = &ctx.data::<Services>()?.accounts;
        accounts.change_password(principal.user_id, principal.session_id, current, new_password).await?;
        Ok(true)
    }

    /// Texts a verification code to `phone` (which becomes the caller's once verified).
    /// Changing the number of an account with a password needs `currentPassword`.
    /// Errors: BAD_USER_INPUT (`phone`, `currentPassword`), INVALID_CREDENTIALS, RATE_LIMITED.
    #[graphql(guard = "SignedIn", complexity = "AUTH_MUTATION_COST")]
    async fn request_phone_verification(
        &self,
        ctx: &Context<'_>,
        phone: String,
        current_password: Option<String>,
    ) -> Result<bool> {
        let principal = ctx.data::<Viewer>()?.require()?;
        let phone = Phone::parse(&phone)?;
        let password = optional_password(current_password, "currentPassword")?;
        let accounts = &ctx.data::<Services>()?.accounts;
        accounts.request_phone_verification(principal.user_id, &phone, password, ctx.data::<ClientInfo>()?).await?;
        Ok(true)
    }

    /// Edits the caller's profile. Errors: BAD_USER_INPUT, CONFLICT (`username`),
    /// INVALID_CREDENTIALS (phone or email change with a wrong password), RATE_LIMITED.
    #[graphql(guard = "SignedIn")]
    async fn update_me(&self, ctx: &Context<'_>, input: UpdateMeInput) -> Result<UpdateMePayload> {
        let principal = ctx.data::<Viewer>()?.require()?;
        let services = ctx.data::<Services>()?;
        let (changes, email, password) = input.changes(services.clock.now().date_naive())?;
        let client = ctx.data::<ClientInfo>()?;
        let update = services.accounts.update_profile(principal.user_id, changes, email, password, client).await?;
        Ok(UpdateMePayload { user: UserView::owner(update.user), email_change_pending: update.email_change_pending })
    }

    /// Deactivates the caller's account; every session ends. Only an admin can reactivate it.
    /// Errors: INVALID_CREDENTIALS, FORBIDDEN (the last active superuser cannot leave the server
    /// without an administrator).
    #[graphql(guard = "SignedIn", complexity = "AUTH_MUTATION_COST")]
    async fn deactivate_me(&self, ctx: &Context<'_>, password: String) -> Result<bool> {
        let principal = ctx.data::<Viewer>()?.require()?;
        let password = Password::parse(password, "password")?;
        let accounts = &ctx.data::<Services>()?.accounts;
        accounts.deactivate_self(principal.user_id, password, ctx.data::<ClientInfo>()?).await?;
        Ok(true)
    }

    /// Completes a phone verification with the texted code.
    /// Errors: OTP_INVALID, OTP_EXPIRED, BAD_USER_INPUT (`code`), CONFLICT (`phone`).
    #[graphql(guard = "SignedIn", complexity = "AUTH_MUTATION_COST")]
    async fn verify_phone(&self, ctx: &Context<'_>, code: String) -> Result<VerifyPhonePayload> {
        let principal = ctx.data::<Viewer>()?.require()?;
        let user = ctx.data::<Services>()?.accounts.verify_phone(principal.user_id, code.trim()).await?;
        Ok(VerifyPhonePayload { user: UserView::owner(user) })
    }
}
