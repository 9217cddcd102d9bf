//! GraphQL face of social sign-in: `socialAuthStart`, `socialAuth`, `mySocialAccounts`,
//! `linkSocialAccount` and `unlinkSocialAccount`.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::model::Proof;
use crate::{
    auth::model::parse_device_name,
    client::ClientInfo,
    error::AppError,
    graphql::{AUTH_MUTATION_COST, grant::LoginResult, guards::SignedIn, viewer::Viewer},
    identities::SocialIdentity,
    services::Services,
};

#[derive(InputObject)]
pub struct SocialAuthStartInput {
    /// A provider's name from `authConfig.socialProviders` (`GOOGLE`, `GITHUB`...).
    pub provider: String,
    /// Where the provider sends the browser back; must be on IDGATE_SOCIAL_REDIRECT_URIS.
    pub redirect_uri: String,
}

/// Where to send the browser, and the state it comes back with.
#[derive(SimpleObject)]
pub struct SocialAuthStart {
    /// The provider's consent page for this flow (PKCE, and a nonce for OpenID Connect).
    pub authorization_url: String,
    /// Comes back as `state` next to `code`: pass both to `socialAuth`. Single use, 10 minutes.
    pub state: String,
}

/// Proof from a provider: `code` with `state` and `redirectUri` (the redirect flow), or an
/// `idToken` (OpenID Connect providers' SDKs), or an `accessToken` (GitHub's and Facebook's).
#[derive(InputObject)]
pub struct LinkSocialAccountInput {
    /// A provider's name from `authConfig.socialProviders` (`GOOGLE`, `GITHUB`...).
    pub provider: String,
    pub code: Option<String>,
    pub state: Option<String>,
    pub redirect_uri: Option<String>,
    pub id_token: Option<String>,
    /// The nonce the client asked the provider to put in `idToken`, checked when given.
    pub nonce: Option<String>,
    pub access_token: Option<String>,
}

impl LinkSocialAccountInput {
    /// Exactly one kind of proof.
    fn proof(self) -> Result<Proof, AppError> {
        match (self.code, self.state, self.redirect_uri, self.id_token, self.access_token) {
            (Some(code), Some(state), Some(redirect_uri), None, None) => Ok(Proof::Code { code, state, redirect_uri }),
            (None, None, None, Some(token), None) => Ok(Proof::IdToken { token, nonce: self.nonce }),
            (None, None, None, None, Some(token)) => Ok(Proof::AccessToken(token)),
            _ => Err(AppError::bad_input(
                "code",
                "give code with state and redirectUri, or an idToken, or an accessToken",
            )),
        }
    }
}

/// Proof from a provider, as for `linkSocialAccount`, and the name of this device.
#[derive(InputObject)]
pub struct SocialAuthInput {
    #[graphql(flatten)]
    pub proof: LinkSocialAccountInput,
    /// A name for this device in the session list.
    pub device_name: Option<String>,
}

/// A provider account linked to the caller's.
#[derive(SimpleObject)]
pub struct SocialAccount {
    pub provider: String,
    /// The address the provider vouched for at the last sign-in, if any.
    pub email: Option<String>,
    pub linked_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

impl From<SocialIdentity> for SocialAccount {
    fn from(identity: SocialIdentity) -> Self {
        Self {
            provider: identity.provider,
            email: identity.email,
            linked_at: identity.linked_at,
            last_used_at: identity.last_used_at,
        }
    }
}

#[derive(Default)]
pub struct SocialQuery;

#[Object]
impl SocialQuery {
    /// The provider accounts linked to the caller's.
    #[graphql(guard = "SignedIn")]
    async fn my_social_accounts(&self, ctx: &Context<'_>) -> Result<Vec<SocialAccount>> {
        let principal = ctx.data::<Viewer>()?.require()?;
        let linked = ctx.data::<Services>()?.social.identities_of(principal.user_id).await?;
        Ok(linked.into_iter().map(SocialAccount::from).collect())
    }
}

#[derive(Default)]
pub struct SocialMutation;

#[Object]
impl SocialMutation {
    /// Starts the redirect flow: send the browser to `authorizationUrl`. Signed in, it starts a
    /// flow for `linkSocialAccount`. Errors: BAD_USER_INPUT (`provider`, `redirectUri`),
    /// PROVIDER_ERROR, RATE_LIMITED.
    #[graphql(complexity = "AUTH_MUTATION_COST")]
    async fn social_auth_start(&self, ctx: &Context<'_>, input: SocialAuthStartInput) -> Result<SocialAuthStart> {
        let caller = ctx.data::<Viewer>()?.principal().map(|p| p.user_id);
        let client = ctx.data::<ClientInfo>()?;
        let started =
            ctx.data::<Services>()?.social.start(&input.provider, input.redirect_uri.trim(), caller, client).await?;
        Ok(SocialAuthStart { authorization_url: started.authorization_url, state: started.state })
    }

    /// Signs in with a provider. Answers tokens, or an `OtpChallenge` when a mailed code must
    /// come first (the provider's address belongs to an existing account: `verifyOtp` links
    /// and signs in). Errors: BAD_USER_INPUT (`provider`, `state`, `code`, `idToken`,
    /// `accessToken`, `email`), ACCOUNT_INACTIVE, PROVIDER_ERROR (with `provider`),
    /// RATE_LIMITED.
    #[graphql(complexity = "AUTH_MUTATION_COST")]
    async fn social_auth(&self, ctx: &Context<'_>, input: SocialAuthInput) -> Result<LoginResult> {
        let device = parse_device_name(input.device_name)?;
        let provider = input.proof.provider.clone();
        let proof = input.proof.proof()?;
        let client = ctx.data::<ClientInfo>()?;
        let outcome = ctx.data::<Services>()?.social.sign_in(&provider, proof, device, client).await?;
        LoginResult::deliver(ctx, outcome)
    }

    /// Links a provider account to the caller's. Errors: CONFLICT (linked to another account,
    /// or the caller has one at this provider), BAD_USER_INPUT, PROVIDER_ERROR, RATE_LIMITED.
    #[graphql(guard = "SignedIn", complexity = "AUTH_MUTATION_COST")]
    async fn link_social_account(&self, ctx: &Context<'_>, input: LinkSocialAccountInput) -> Result<SocialAccount> {
        let principal = ctx.data::<Viewer>()?.require()?;
        let provider = input.provider.clone();
        let proof = input.proof()?;
        let client = ctx.data::<ClientInfo>()?;
        let linked = ctx.data::<Services>()?.social.link(principal, &provider, proof, client).await?;
        Ok(linked.into())
    }

    /// Unlinks the caller's account at `provider`. Errors: NOT_FOUND, CONFLICT when it is the
    /// last way to sign in (no password, no other provider, no verified phone).
    #[graphql(guard = "SignedIn")]
    async fn unlink_social_account(&self, ctx: &Context<'_>, provider: String) -> Result<bool> {
        let principal = ctx.data::<Viewer>()?.require()?;
        let client = ctx.data::<ClientInfo>()?;
        ctx.data::<Services>()?.social.unlink(principal, &provider, client).await?;
        Ok(true)
    }
}
