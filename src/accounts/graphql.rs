//! GraphQL face of accounts: `register`, `me` and the `User` type with its guarded fields.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};

use super::model::{DateOfBirth, Email, Gender, NewUser, Password, PersonName, Phone, Role, User, Username};
use crate::{
    app::Services,
    client::ClientInfo,
    error::AppResult,
    graphql::{AUTH_MUTATION_COST, guards::SelfOrAdmin, viewer::Viewer},
};

/// A user. Contact and personal fields are visible to the user and to admins; anyone else gets
/// FORBIDDEN on those fields while the rest resolves.
pub struct UserView {
    user: User,
    revealed: bool,
}

impl UserView {
    /// The user as seen by themselves in an answer to their own registration or login.
    pub fn owner(user: User) -> Self {
        Self { user, revealed: true }
    }

    /// The user as seen by whoever the request's Viewer is.
    pub fn seen(user: User) -> Self {
        Self { user, revealed: false }
    }

    fn guard(&self) -> SelfOrAdmin {
        SelfOrAdmin::new(self.user.id, self.revealed)
    }
}

#[Object(name = "User")]
impl UserView {
    async fn id(&self) -> ID {
        ID(self.user.id.to_string())
    }

    #[graphql(guard = "self.guard()")]
    async fn email(&self) -> &str {
        &self.user.email
    }

    async fn username(&self) -> Option<&str> {
        self.user.username.as_deref()
    }

    async fn first_name(&self) -> Option<&str> {
        self.user.first_name.as_deref()
    }

    async fn last_name(&self) -> Option<&str> {
        self.user.last_name.as_deref()
    }

    /// E.164.
    #[graphql(guard = "self.guard()")]
    async fn phone(&self) -> Option<&str> {
        self.user.phone.as_deref()
    }

    #[graphql(guard = "self.guard()")]
    async fn date_of_birth(&self) -> Option<NaiveDate> {
        self.user.date_of_birth
    }

    #[graphql(guard = "self.guard()")]
    async fn gender(&self) -> Option<Gender> {
        self.user.gender
    }

    async fn locale(&self) -> Option<&str> {
        self.user.locale.as_deref()
    }

    async fn role(&self) -> Role {
        self.user.role
    }

    async fn is_active(&self) -> bool {
        self.user.is_active
    }

    async fn email_verified(&self) -> bool {
        self.user.email_verified_at.is_some()
    }

    async fn phone_verified(&self) -> bool {
        self.user.phone_verified_at.is_some()
    }

    #[graphql(guard = "self.guard()")]
    async fn last_login_at(&self) -> Option<DateTime<Utc>> {
        self.user.last_login_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.user.created_at
    }
}

#[derive(InputObject)]
pub struct RegisterInput {
    pub email: String,
    /// 12 to 128 characters by default; see `authConfig.passwordPolicy`.
    pub password: String,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// International form, like +14155550123.
    pub phone: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub gender: Option<Gender>,
}

impl RegisterInput {
    fn parse(self, today: NaiveDate) -> AppResult<NewUser> {
        Ok(NewUser {
            email: Email::parse(&self.email)?,
            password: Password::parse(self.password, "password")?,
            username: self.username.as_deref().map(Username::parse).transpose()?,
            first_name: self.first_name.as_deref().map(|n| PersonName::parse(n, "firstName")).transpose()?,
            last_name: self.last_name.as_deref().map(|n| PersonName::parse(n, "lastName")).transpose()?,
            phone: self.phone.as_deref().map(Phone::parse).transpose()?,
            date_of_birth: self.date_of_birth.map(|d| DateOfBirth::parse(d, today)).transpose()?,
            gender: self.gender,
        })
    }
}

#[derive(SimpleObject)]
pub struct RegisterPayload {
    pub user: UserView,
}

#[derive(Default)]
pub struct AccountsQuery;

#[Object]
impl AccountsQuery {
    /// The caller. Errors: UNAUTHENTICATED.
    async fn me(&self, ctx: &Context<'_>) -> Result<UserView> {
        let principal = ctx.data::<Viewer>()?.require()?;
        let services = ctx.data::<Services>()?;
        let user =
            services.accounts.get(principal.user_id).await.map_err(|_| crate::error::AppError::Unauthenticated)?;
        Ok(UserView::seen(user))
    }
}

#[derive(Default)]
pub struct AccountsMutation;

#[Object]
impl AccountsMutation {
    /// Creates an account. A taken email gets the same answer as a free one (its owner is told
    /// by mail), so this cannot be used to learn who has an account.
    /// Errors: BAD_USER_INPUT (with `field`), CONFLICT (username), RATE_LIMITED.
    #[graphql(complexity = "AUTH_MUTATION_COST")]
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<RegisterPayload> {
        let services = ctx.data::<Services>()?;
        let new = input.parse(services.clock.now().date_naive())?;
        let user = services.accounts.register(new, ctx.data::<ClientInfo>()?).await?;
        Ok(RegisterPayload { user: UserView::owner(user) })
    }
}
