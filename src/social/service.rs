//! The rules of social sign-in (the protocol is `providers`' business):
//!
//! - An identity is (provider, subject). A linked one signs in to its account.
//! - An unknown identity with a provider-verified address nobody has: a new account (no
//!   password, address verified, names from the profile), in one transaction with the link.
//! - An unknown identity whose verified address is an account's: never linked silently. A code
//!   goes to the account's address; `verifyOtp` with it links and signs in, and claims the
//!   account when its address was never verified (`identities::link_proven`).
//! - No verified address: refused when `social_require_email`, else an account without one. An
//!   unverified address is never stored, so it can neither link to nor block an account.
//! - The redirect flow's state is single-use, lives 10 minutes in the KV (any instance finishes
//!   the flow), and is bound to the provider, the redirect URI and, for linking, the user.

use std::{sync::Arc, time::Duration};

use oauth2::PkceCodeChallenge;
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde_json::json;

use super::{
    model::{PendingFlow, Proof, ProviderInfo, StartedFlow},
    providers::Providers,
};
use crate::{
    audit::{
        self,
        model::{AuditKind, NewAuditEvent},
    },
    auth::{model::LoginOutcome, service::AuthService},
    client::ClientInfo,
    clock::Clock,
    config::Settings,
    domain::{Email, Principal, User, UserId},
    error::{AppError, AppResult},
    identities::{self, ExternalIdentity, SocialIdentity},
    kv::Kv,
    security::{
        crypto::random_token,
        rate_limit::{RateLimiter, Rule},
    },
    users::repo as users,
};

/// How long a started redirect flow waits for its code.
const FLOW_TTL: Duration = Duration::from_secs(600);

/// The tunables of social sign-in, from settings.
#[derive(Debug, Clone)]
pub struct SocialPolicy {
    pub redirect_uris: Vec<String>,
    pub require_email: bool,
    /// Whether the mailed login code follows a provider sign-in.
    pub login_otp: bool,
    pub per_ip: u32,
}

impl SocialPolicy {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            redirect_uris: settings.social_redirect_uri_list().into_iter().map(str::to_owned).collect(),
            require_email: settings.social_require_email,
            login_otp: settings.social_login_otp && settings.login_otp == crate::config::LoginOtp::Email,
            per_ip: settings.login_rate_per_ip,
        }
    }
}

/// Sign-in, linking and unlinking with providers.
#[derive(Clone)]
pub struct SocialService {
    pub(crate) db: DatabaseConnection,
    pub(crate) kv: Arc<dyn Kv>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) limiter: RateLimiter,
    pub(crate) auth: AuthService,
    pub(crate) providers: Arc<Providers>,
    pub(crate) policy: SocialPolicy,
}

impl SocialService {
    /// The enabled providers.
    pub fn providers(&self) -> Vec<ProviderInfo> {
        self.providers.list()
    }

    /// Starts a redirect flow: where to send the browser, and the state it returns with.
    /// A signed-in `caller` starts a flow that only they can finish with `linkSocialAccount`.
    ///
    /// Errors: BAD_USER_INPUT (`provider`, `redirectUri` not on the allow-list),
    /// PROVIDER_ERROR, RATE_LIMITED.
    pub async fn start(
        &self,
        provider: &str,
        redirect_uri: &str,
        caller: Option<UserId>,
        client: &ClientInfo,
    ) -> AppResult<StartedFlow> {
        self.limit(client).await?;
        let provider = self.providers.canonical(provider)?;
        if !self.policy.redirect_uris.iter().any(|allowed| allowed == redirect_uri) {
            return Err(AppError::bad_input("redirectUri", "is not an allowed redirect URI"));
        }
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = random_token();
        let nonce = self.providers.is_oidc(&provider).then(random_token);
        let authorization_url =
            self.providers.authorization_url(&provider, redirect_uri, &state, challenge, nonce.as_deref()).await?;
        let flow = PendingFlow {
            provider,
            redirect_uri: redirect_uri.to_owned(),
            pkce_verifier: verifier.secret().clone(),
            nonce,
            user: caller.map(|u| u.0),
            expires_at: self.clock.now() + chrono::Duration::from_std(FLOW_TTL).unwrap_or(chrono::Duration::MAX),
        };
        let raw = serde_json::to_string(&flow).map_err(AppError::internal)?;
        self.kv.set(&flow_key(&state)?, &raw, FLOW_TTL).await?;
        Ok(StartedFlow { authorization_url, state })
    }

    /// Signs in with a provider: tokens, or a challenge when a mailed code is due first.
    ///
    /// Errors: BAD_USER_INPUT (`provider`, `state`, `code`, `idToken`, `accessToken`, `email`
    /// when no verified address and one is required), ACCOUNT_INACTIVE, PROVIDER_ERROR,
    /// RATE_LIMITED.
    pub async fn sign_in(
        &self,
        provider: &str,
        proof: Proof,
        device_name: Option<String>,
        client: &ClientInfo,
    ) -> AppResult<LoginOutcome> {
        self.limit(client).await?;
        let identity = match self.prove(provider, proof, None).await {
            Ok(identity) => identity,
            Err(error) => return Err(self.refused(provider, error, client).await),
        };
        // A concurrent first sign-in may create the account between our look and our insert:
        // then the second look finds it.
        match self.sign_in_once(&identity, device_name.clone(), client).await {
            Err(AppError::Conflict { .. }) => self.sign_in_once(&identity, device_name, client).await,
            other => other,
        }
    }

    async fn sign_in_once(
        &self,
        identity: &ExternalIdentity,
        device_name: Option<String>,
        client: &ClientInfo,
    ) -> AppResult<LoginOutcome> {
        if let Some(owner) = identities::repo::owner_of(&self.db, &identity.provider, &identity.subject).await? {
            let user = users::find_by_id(&self.db, owner).await?.ok_or(AppError::NotFound("user"))?;
            return self.auth.sign_in_with_identity(user, identity, self.policy.login_otp, device_name, client).await;
        }
        let email = identity.verified_email().map(Email::parse).transpose()?;
        if let Some(email) = email {
            if let Some(found) = users::find_credentials(&self.db, email.as_str()).await? {
                let challenge =
                    self.auth.challenge_to_link(&found.user, email, identity.clone(), device_name, client).await?;
                return Ok(LoginOutcome::ChallengeSent(challenge));
            }
        } else if self.policy.require_email {
            let event = NewAuditEvent::new(AuditKind::LoginFailed, self.clock.now()).client(client).detail(json!({
                "reason": "no_verified_email", "method": "social", "provider": identity.provider,
            }));
            audit::record(&self.db, event).await?;
            return Err(AppError::bad_input(
                "email",
                "the provider did not vouch for an email address; verify one there, or sign in another way",
            ));
        }
        let user = self.create(identity, client).await?;
        self.auth.sign_in_with_identity(user, identity, self.policy.login_otp, device_name, client).await
    }

    /// Records a sign-in refused before anyone was identified (a bad proof, a failing
    /// provider), and hands the error back.
    async fn refused(&self, provider: &str, error: AppError, client: &ClientInfo) -> AppError {
        let reason = match &error {
            AppError::BadUserInput { field, .. } => format!("invalid_{field}"),
            AppError::Provider(_) => "provider_error".to_owned(),
            _ => return error,
        };
        let provider = self.providers.canonical(provider).unwrap_or_else(|_| "unknown".to_owned());
        let event = NewAuditEvent::new(AuditKind::LoginFailed, self.clock.now())
            .client(client)
            .detail(json!({ "reason": reason, "method": "social", "provider": provider }));
        match audit::record(&self.db, event).await {
            Ok(()) => error,
            Err(audit_error) => audit_error,
        }
    }

    /// The account of a first sign-in, created with its link in one transaction.
    async fn create(&self, identity: &ExternalIdentity, client: &ClientInfo) -> AppResult<User> {
        let now = self.clock.now();
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        let user = users::insert_social_user(
            &txn,
            identity.verified_email(),
            identity.first_name.clone(),
            identity.last_name.clone(),
            now,
        )
        .await?;
        let event = NewAuditEvent::new(AuditKind::Registered, now)
            .user(user.id)
            .actor(Some(user.id))
            .client(client)
            .detail(json!({ "method": "social", "provider": identity.provider }));
        audit::record(&txn, event).await?;
        identities::link(&txn, &user, identity, client, now).await?;
        txn.commit().await.map_err(AppError::internal)?;
        Ok(user)
    }

    /// Links a provider identity to the signed-in caller.
    ///
    /// Errors: CONFLICT (`provider`: the identity belongs to another account, or the caller has
    /// one at this provider), BAD_USER_INPUT, PROVIDER_ERROR, RATE_LIMITED.
    pub async fn link(
        &self,
        caller: Principal,
        provider: &str,
        proof: Proof,
        client: &ClientInfo,
    ) -> AppResult<SocialIdentity> {
        self.limit(client).await?;
        let identity = self.prove(provider, proof, Some(caller.user_id)).await?;
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        let user = users::lock(&txn, caller.user_id).await?.ok_or(AppError::Unauthenticated)?.user;
        match identities::repo::owner_of(&txn, &identity.provider, &identity.subject).await? {
            Some(owner) if owner == user.id => {
                let mine = identities::repo::of_user(&txn, user.id).await?;
                return mine
                    .into_iter()
                    .find(|i| i.provider == identity.provider)
                    .ok_or(AppError::NotFound("identity"));
            }
            Some(_) => return Err(AppError::WrongState("this provider account is linked to another account")),
            None => {}
        }
        let linked = identities::link(&txn, &user, &identity, client, self.clock.now()).await?;
        txn.commit().await.map_err(AppError::internal)?;
        Ok(linked)
    }

    /// Unlinks the caller's identity at `provider`, unless it is their last way to sign in.
    ///
    /// Errors: NOT_FOUND (no identity there), CONFLICT (no password, no other provider and no
    /// verified phone would be left).
    pub async fn unlink(&self, caller: Principal, provider: &str, client: &ClientInfo) -> AppResult<()> {
        let provider = provider.trim().to_uppercase();
        let now = self.clock.now();
        let txn = self.db.begin().await.map_err(AppError::internal)?;
        let account = users::lock(&txn, caller.user_id).await?.ok_or(AppError::Unauthenticated)?;
        if !identities::repo::remove(&txn, caller.user_id, &provider).await? {
            return Err(AppError::NotFound("social account"));
        }
        let others = identities::repo::count(&txn, caller.user_id).await?;
        let phone_login = account.user.phone_verified_at.is_some();
        if account.password_hash.is_none() && others == 0 && !phone_login {
            return Err(AppError::WrongState(
                "this is the account's last way to sign in: set a password or link another provider first",
            ));
        }
        let event = NewAuditEvent::new(AuditKind::SocialAccountUnlinked, now)
            .user(caller.user_id)
            .actor(Some(caller.user_id))
            .client(client)
            .detail(json!({ "provider": provider }));
        audit::record(&txn, event).await?;
        txn.commit().await.map_err(AppError::internal)
    }

    /// The caller's linked identities.
    pub async fn identities_of(&self, user: UserId) -> AppResult<Vec<SocialIdentity>> {
        identities::repo::of_user(&self.db, user).await
    }

    /// Turns a client's proof into the identity the provider vouches for. A code redeems its
    /// state, once; with `linking`, the state must have been started by that user.
    async fn prove(&self, provider: &str, proof: Proof, linking: Option<UserId>) -> AppResult<ExternalIdentity> {
        let provider = self.providers.canonical(provider)?;
        match proof {
            Proof::Code { code, state, redirect_uri } => {
                let bad_state = |why: &str| AppError::bad_input("state", why);
                let key = flow_key(&state).map_err(|_| bad_state("is unknown, used or expired"))?;
                let raw = self.kv.take(&key).await?.ok_or_else(|| bad_state("is unknown, used or expired"))?;
                let flow: PendingFlow = serde_json::from_str(&raw).map_err(AppError::internal)?;
                if self.clock.now() >= flow.expires_at {
                    return Err(bad_state("is unknown, used or expired"));
                }
                if flow.provider != provider || flow.redirect_uri != redirect_uri {
                    return Err(bad_state("was issued for another provider or redirect URI"));
                }
                if linking.is_some_and(|user| flow.user != Some(user.0)) {
                    return Err(bad_state("was not started by this user"));
                }
                if code.is_empty() || code.len() > 2048 {
                    return Err(AppError::bad_input("code", "is missing or too long"));
                }
                self.providers
                    .exchange_code(&provider, &code, &redirect_uri, &flow.pkce_verifier, flow.nonce.as_deref())
                    .await
            }
            Proof::IdToken { token, nonce } => {
                if token.len() > 16 * 1024 {
                    return Err(AppError::bad_input("idToken", "is too long"));
                }
                self.providers.verify_id_token(&provider, &token, nonce.as_deref()).await
            }
            Proof::AccessToken(token) => {
                if token.is_empty() || token.len() > 4096 {
                    return Err(AppError::bad_input("accessToken", "is missing or too long"));
                }
                self.providers.verify_access_token(&provider, &token).await
            }
        }
    }

    async fn limit(&self, client: &ClientInfo) -> AppResult<()> {
        let rule = Rule { name: "social-ip", limit: self.policy.per_ip, window: Duration::from_secs(60) };
        self.limiter.hit(rule, &client.ip_or_unknown()).await
    }
}

/// The KV key of a flow's state; refuses states that cannot be ours before touching the KV.
fn flow_key(state: &str) -> AppResult<String> {
    let plausible = state.len() == 43 && state.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plausible {
        return Err(AppError::bad_input("state", "is unknown, used or expired"));
    }
    Ok(format!("social-flow:{state}"))
}
