//! Domain types of social sign-in: the kinds of provider, the proof a client brings, and the
//! redirect flow's pending state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How idgate talks to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum ProviderKind {
    Google,
    Facebook,
    Github,
    /// A generic OpenID Connect provider, configured by issuer.
    Oidc,
}

/// An enabled provider, as `authConfig.socialProviders` lists it.
#[derive(Debug, Clone)]
pub struct ProviderInfo {
    /// The name to pass as `provider` (`GOOGLE`, `GITHUB`, `KEYCLOAK`...).
    pub name: String,
    pub kind: ProviderKind,
    /// Whether `socialAuthStart` and the code flow are available (a client secret is set).
    pub redirect_flow: bool,
    /// Whether `socialAuth` takes an `idToken` (OpenID Connect) or an `accessToken` (GitHub,
    /// Facebook) from a provider SDK.
    pub token_flow: bool,
}

/// What a client brings to prove who it is at a provider.
#[derive(Debug, Clone)]
pub enum Proof {
    /// The redirect flow's return: the provider's code and our state.
    Code { code: String, state: String, redirect_uri: String },
    /// An OpenID Connect ID token from a provider SDK; `nonce` when the client asked for one.
    IdToken { token: String, nonce: Option<String> },
    /// A GitHub or Facebook access token from a provider SDK.
    AccessToken(String),
}

/// A started redirect flow, kept in the KV under its state until the code comes back: any
/// instance can finish it, and only once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingFlow {
    pub provider: String,
    pub redirect_uri: String,
    /// The PKCE verifier; only its S256 hash went to the provider.
    pub pkce_verifier: String,
    /// OpenID Connect only: the ID token must carry it back.
    pub nonce: Option<String>,
    /// The signed-in user who started it to link an identity, if any.
    pub user: Option<Uuid>,
    /// Checked against the clock as well as kept as the KV entry's lifetime, so that expiry
    /// means the same on every KV.
    pub expires_at: DateTime<Utc>,
}

/// What `socialAuthStart` answers: where to send the browser, and the state it comes back with.
#[derive(Debug, Clone)]
pub struct StartedFlow {
    pub authorization_url: String,
    pub state: String,
}
