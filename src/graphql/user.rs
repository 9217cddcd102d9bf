//! The `User` object and the user inputs several features take (`RegisterInput`,
//! `ProfileFields`): shared GraphQL types below the feature roots, so no feature's graphql.rs
//! imports another's.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};
use chrono::{DateTime, NaiveDate, Utc};

use super::{guards::SelfOrAdmin, scalars::Date, session::SessionView, viewer::Viewer};
use crate::{
    domain::{
        DateOfBirth, Email, Gender, Locale, NewUser, Password, PersonName, Phone, ProfileChanges, Role, User, Username,
    },
    error::AppResult,
    services::Services,
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

    /// Null only for accounts created from a phone number.
    #[graphql(guard = "self.guard()")]
    async fn email(&self) -> Option<&str> {
        self.user.email.as_deref()
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

    /// The avatar (`uploadAvatar`): a PNG of at most 512×512, public like the image itself.
    async fn avatar_url(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(ctx.data::<Services>()?.media.avatar_url(&self.user))
    }

    /// E.164.
    #[graphql(guard = "self.guard()")]
    async fn phone(&self) -> Option<&str> {
        self.user.phone.as_deref()
    }

    #[graphql(guard = "self.guard()")]
    async fn date_of_birth(&self) -> Option<Date> {
        self.user.date_of_birth.map(Date)
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

    /// Set while the account is locked after repeated failed logins: when the lock ends (a
    /// password reset or an admin's `unlockUser` ends it sooner). Null when not locked.
    #[graphql(guard = "self.guard()")]
    async fn locked_until(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(self.user.locked_at(ctx.data::<Services>()?.clock.now()))
    }

    /// The account's live sessions, most recently used first.
    #[graphql(guard = "self.guard()")]
    async fn sessions(&self, ctx: &Context<'_>) -> Result<Vec<SessionView>> {
        let current = ctx.data::<Viewer>()?.principal().map(|p| p.session_id);
        let sessions = ctx.data::<Services>()?.auth.sessions_of(self.user.id).await?;
        Ok(sessions.into_iter().map(|session| SessionView::new(session, current)).collect())
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
    pub date_of_birth: Option<Date>,
    pub gender: Option<Gender>,
}

impl RegisterInput {
    /// Parses every field into a registration; `today` bounds the date of birth.
    pub fn parse(self, today: NaiveDate) -> AppResult<NewUser> {
        Ok(NewUser {
            email: Email::parse(&self.email)?,
            password: Password::parse(self.password, "password")?,
            username: self.username.as_deref().map(Username::parse).transpose()?,
            first_name: self.first_name.as_deref().map(|n| PersonName::parse(n, "firstName")).transpose()?,
            last_name: self.last_name.as_deref().map(|n| PersonName::parse(n, "lastName")).transpose()?,
            phone: self.phone.as_deref().map(Phone::parse).transpose()?,
            date_of_birth: self.date_of_birth.map(|d| DateOfBirth::parse(d.0, today)).transpose()?,
            gender: self.gender,
        })
    }
}

/// Editable profile fields, shared by `updateMe` and `updateUser`. An absent field stays as it
/// is; `null` clears it.
#[derive(InputObject)]
pub struct ProfileFields {
    pub username: MaybeUndefined<String>,
    pub first_name: MaybeUndefined<String>,
    pub last_name: MaybeUndefined<String>,
    pub date_of_birth: MaybeUndefined<Date>,
    pub gender: MaybeUndefined<Gender>,
    /// A language tag like `en` or `es-MX`; picks the language of messages.
    pub locale: MaybeUndefined<String>,
    /// A new number is stored unverified (see `requestPhoneVerification`).
    pub phone: MaybeUndefined<String>,
}

impl ProfileFields {
    /// Parses every given field; `today` bounds the date of birth.
    pub fn parse(self, today: NaiveDate) -> AppResult<ProfileChanges> {
        Ok(ProfileChanges {
            username: clearable(self.username, |u| Username::parse(&u))?,
            first_name: clearable(self.first_name, |n| PersonName::parse(&n, "firstName"))?,
            last_name: clearable(self.last_name, |n| PersonName::parse(&n, "lastName"))?,
            date_of_birth: clearable(self.date_of_birth, |d| DateOfBirth::parse(d.0, today))?,
            gender: clearable(self.gender, Ok)?,
            locale: clearable(self.locale, |l| Locale::parse(&l))?,
            phone: clearable(self.phone, |p| Phone::parse(&p))?,
        })
    }
}

/// Parses a clearable field: absent -> no change, null -> clear, value -> parsed value.
fn clearable<T, U>(value: MaybeUndefined<T>, parse: impl FnOnce(T) -> AppResult<U>) -> AppResult<Option<Option<U>>> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(raw) => parse(raw).map(|v| Some(Some(v))),
    }
}
