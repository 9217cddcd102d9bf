//! Social sign-in: Google, Facebook, GitHub and any OpenID Connect provider, by the redirect
//! flow (authorization code with PKCE, and a nonce for OpenID Connect) or by a token a
//! provider SDK handed the client (an ID token, or an access token checked with the provider).
//!
//! - `providers`: what is configured, and the protocol with each provider (over `oauth2` and
//!   `openidconnect`); it turns proof from a provider into an [`ExternalIdentity`].
//! - `service`: the rules for what an identity may sign in to (`identities` keeps the links).
//!
//! [`ExternalIdentity`]: crate::identities::ExternalIdentity

pub mod graphql;
pub mod model;
pub mod providers;
pub mod service;
