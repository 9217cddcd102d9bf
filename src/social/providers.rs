//! The configured sign-in providers and the protocol with each. Everything here turns proof from
//! a provider into an [`ExternalIdentity`] or fails with one of three answers:
//!
//! - PROVIDER_ERROR (named): the provider could not be reached in time, or answered something
//!   unusable. The detail is logged, without tokens (URLs are stripped from HTTP errors, since
//!   Facebook's carry tokens in the query).
//! - BAD_USER_INPUT on the proof (`code`, `idToken`, `accessToken`): the provider refused it, or
//!   it is not valid for our client (signature, issuer, audience, expiry, nonce, app).
//!
//! OpenID Connect providers (Google and generic ones) are driven by `openidconnect`: discovery,
//! JWKS, ID-token validation. GitHub and Facebook speak plain OAuth 2.0 (`oauth2`) and their own
//! REST APIs for the profile.

use std::{
    collections::HashMap,
    fmt::Display,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use hmac::{Hmac, Mac};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, TokenResponse as _, TokenUrl, basic::BasicClient,
};
use openidconnect::{
    IssuerUrl, Nonce, TokenResponse as _,
    core::{
        CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenClaims, CoreProviderMetadata, CoreUserInfoClaims,
    },
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use super::model::{ProviderInfo, ProviderKind};
use crate::{
    config::Settings,
    domain::{Email, PersonName},
    error::{AppError, AppResult},
    identities::ExternalIdentity,
};

/// How long a discovery document (with its keys) is reused before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(600);
/// The most of a provider API's answer that is read.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// The longest subject id kept (the column's size).
const MAX_SUBJECT_CHARS: usize = 255;

/// Where a provider lives and how to talk to it.
#[derive(Debug, Clone)]
enum Endpoints {
    Oidc { issuer: String, scopes: Vec<String> },
    Github { web: String, api: String },
    Facebook { dialog: String, graph: String, email_verified: bool },
}

/// One configured provider.
#[derive(Debug, Clone)]
struct Provider {
    name: String,
    kind: ProviderKind,
    client_id: String,
    client_secret: Option<SecretString>,
    endpoints: Endpoints,
}

/// The enabled providers and one HTTP client for all of them (bounded by the configured
/// timeout, never following redirects).
pub struct Providers {
    list: Vec<Provider>,
    http: reqwest::Client,
    discovered: Mutex<HashMap<String, (Instant, CoreProviderMetadata)>>,
}

impl Providers {
    /// The providers the settings enable.
    pub fn from_settings(settings: &Settings) -> AppResult<Self> {
        let trim = |url: &str| url.trim_end_matches('/').to_owned();
        let default_scopes = || vec!["email".to_owned(), "profile".to_owned()];
        let mut list = Vec::new();
        if let Some(client_id) = &settings.google_client_id {
            list.push(Provider {
                name: "GOOGLE".into(),
                kind: ProviderKind::Google,
                client_id: client_id.clone(),
                client_secret: settings.google_client_secret.clone(),
                endpoints: Endpoints::Oidc { issuer: trim(&settings.google_issuer), scopes: default_scopes() },
            });
        }
        if let (Some(app_id), Some(secret)) = (&settings.facebook_app_id, &settings.facebook_app_secret) {
            list.push(Provider {
                name: "FACEBOOK".into(),
                kind: ProviderKind::Facebook,
                client_id: app_id.clone(),
                client_secret: Some(secret.clone()),
                endpoints: Endpoints::Facebook {
                    dialog: trim(&settings.facebook_url),
                    graph: trim(&settings.facebook_graph_url),
                    email_verified: settings.facebook_email_verified,
                },
            });
        }
        if let (Some(client_id), Some(secret)) = (&settings.github_client_id, &settings.github_client_secret) {
            list.push(Provider {
                name: "GITHUB".into(),
                kind: ProviderKind::Github,
                client_id: client_id.clone(),
                client_secret: Some(secret.clone()),
                endpoints: Endpoints::Github { web: trim(&settings.github_url), api: trim(&settings.github_api_url) },
            });
        }
        for generic in settings.oidc_provider_list().map_err(AppError::internal)? {
            list.push(Provider {
                name: generic.name.to_uppercase(),
                kind: ProviderKind::Oidc,
                client_id: generic.client_id,
                client_secret: generic.client_secret,
                endpoints: Endpoints::Oidc {
                    issuer: trim(&generic.issuer),
                    scopes: generic.scopes.unwrap_or_else(default_scopes),
                },
            });
        }
        let timeout = Duration::from_secs(settings.social_timeout_secs);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("idgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(AppError::internal)?;
        Ok(Self { list, http, discovered: Mutex::new(HashMap::new()) })
    }

    /// The enabled providers, for `authConfig`.
    pub fn list(&self) -> Vec<ProviderInfo> {
        self.list
            .iter()
            .map(|p| ProviderInfo {
                name: p.name.clone(),
                kind: p.kind,
                redirect_flow: p.client_secret.is_some(),
                token_flow: true,
            })
            .collect()
    }

    /// The canonical name of an enabled provider, given in any case.
    ///
    /// Errors: BAD_USER_INPUT (`provider`) when no such provider is enabled.
    pub fn canonical(&self, name: &str) -> AppResult<String> {
        self.find(name).map(|p| p.name.clone())
    }

    /// Whether the provider speaks OpenID Connect (and so takes a nonce).
    pub fn is_oidc(&self, name: &str) -> bool {
        self.find(name).is_ok_and(|p| matches!(p.endpoints, Endpoints::Oidc { .. }))
    }

    fn find(&self, name: &str) -> AppResult<&Provider> {
        self.list
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| AppError::bad_input("provider", "is not an enabled sign-in provider"))
    }

    /// Where to send the browser: the provider's consent page for our client, with the PKCE
    /// challenge, `state` and (OpenID Connect) `nonce`.
    ///
    /// Errors: BAD_USER_INPUT (`provider`: no redirect flow), PROVIDER_ERROR (discovery).
    pub async fn authorization_url(
        &self,
        name: &str,
        redirect_uri: &str,
        state: &str,
        pkce: PkceCodeChallenge,
        nonce: Option<&str>,
    ) -> AppResult<String> {
        let provider = self.find(name)?;
        if provider.client_secret.is_none() {
            return Err(AppError::bad_input("provider", "offers no redirect flow here; send an idToken"));
        }
        let redirect = redirect_url(redirect_uri)?;
        let state = CsrfToken::new(state.to_owned());
        let url = match &provider.endpoints {
            Endpoints::Oidc { scopes, .. } => {
                let nonce = Nonce::new(nonce.unwrap_or_default().to_owned());
                let client = self.oidc_client(provider).await?.set_redirect_uri(redirect);
                let mut request =
                    client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, move || state, move || nonce);
                for scope in scopes {
                    request = request.add_scope(Scope::new(scope.clone()));
                }
                request.set_pkce_challenge(pkce).url().0
            }
            Endpoints::Github { web, .. } => {
                let auth_url = format!("{web}/login/oauth/authorize");
                oauth2_authorize(provider, auth_url, redirect, state, "read:user user:email", pkce)?
            }
            Endpoints::Facebook { dialog, .. } => {
                let auth_url = format!("{dialog}/dialog/oauth");
                oauth2_authorize(provider, auth_url, redirect, state, "email public_profile", pkce)?
            }
        };
        Ok(url.to_string())
    }

    /// Trades the code the provider sent back for the person's identity.
    ///
    /// Errors: BAD_USER_INPUT (`code`: refused by the provider, or an ID token that fails
    /// validation), PROVIDER_ERROR.
    pub async fn exchange_code(
        &self,
        name: &str,
        code: &str,
        redirect_uri: &str,
        pkce_verifier: &str,
        nonce: Option<&str>,
    ) -> AppResult<ExternalIdentity> {
        let provider = self.find(name)?;
        let secret = provider
            .client_secret
            .as_ref()
            .ok_or_else(|| AppError::bad_input("provider", "offers no redirect flow here; send an idToken"))?;
        let code = AuthorizationCode::new(code.to_owned());
        let verifier = PkceCodeVerifier::new(pkce_verifier.to_owned());
        let redirect = redirect_url(redirect_uri)?;
        match &provider.endpoints {
            Endpoints::Oidc { .. } => {
                let client = self.oidc_client(provider).await?.set_redirect_uri(redirect);
                let request = client.exchange_code(code).map_err(|e| failed(provider, e))?;
                let response = request
                    .set_pkce_verifier(verifier)
                    .request_async(&self.http)
                    .await
                    .map_err(|e| refused(provider, e))?;
                let id_token = response.id_token().ok_or_else(|| failed(provider, "no ID token in the response"))?;
                let expected = Nonce::new(nonce.unwrap_or_default().to_owned());
                let claims = id_token
                    .claims(&client.id_token_verifier(), &expected)
                    .map_err(|e| invalid(provider, "code", "the provider's ID token is not valid", e))?;
                let mut identity = oidc_identity(provider, claims);
                if identity.email.is_none() {
                    // Some providers put the address only in userinfo.
                    let info: CoreUserInfoClaims = client
                        .user_info(response.access_token().clone(), Some(claims.subject().clone()))
                        .map_err(|e| failed(provider, e))?
                        .request_async(&self.http)
                        .await
                        .map_err(|e| failed(provider, e))?;
                    identity.email =
                        info.email().and_then(|e| Email::parse(e.as_str()).ok()).map(|e| e.as_str().into());
                    identity.email_verified = identity.email.is_some() && info.email_verified() == Some(true);
                }
                Ok(identity)
            }
            Endpoints::Github { web, .. } => {
                let token_url = format!("{web}/login/oauth/access_token");
                let token = self.oauth2_exchange(provider, secret, token_url, redirect, code, verifier).await?;
                self.github_identity(provider, token.secret()).await
            }
            Endpoints::Facebook { graph, .. } => {
                let token_url = format!("{graph}/oauth/access_token");
                let token = self.oauth2_exchange(provider, secret, token_url, redirect, code, verifier).await?;
                self.facebook_identity(provider, token.secret(), None).await
            }
        }
    }

    /// A plain OAuth 2.0 code exchange (client credentials in the body, as GitHub and Facebook
    /// expect); the access token it yields.
    async fn oauth2_exchange(
        &self,
        provider: &Provider,
        secret: &SecretString,
        token_url: String,
        redirect: RedirectUrl,
        code: AuthorizationCode,
        verifier: PkceCodeVerifier,
    ) -> AppResult<oauth2::AccessToken> {
        let client = BasicClient::new(ClientId::new(provider.client_id.clone()))
            .set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()))
            .set_token_uri(endpoint_url(provider, TokenUrl::new(token_url))?)
            .set_redirect_uri(redirect)
            .set_auth_type(AuthType::RequestBody);
        let response = client
            .exchange_code(code)
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| refused(provider, e))?;
        Ok(response.access_token().clone())
    }

    /// Validates an ID token a provider SDK handed the client: signature by the provider's
    /// published keys, issuer, audience (our client id), expiry, and `nonce` when given.
    ///
    /// Errors: BAD_USER_INPUT (`provider`: not OpenID Connect; `idToken`), PROVIDER_ERROR.
    pub async fn verify_id_token(&self, name: &str, token: &str, nonce: Option<&str>) -> AppResult<ExternalIdentity> {
        let provider = self.find(name)?;
        let Endpoints::Oidc { issuer, .. } = &provider.endpoints else {
            return Err(AppError::bad_input("provider", "takes an accessToken, not an idToken"));
        };
        let bad = |e: &dyn Display| invalid(provider, "idToken", "is not a valid ID token for this provider", e);
        let id_token: CoreIdToken = token.trim().parse().map_err(|e: serde_json::Error| bad(&e))?;
        let client = self.oidc_client(provider).await?;
        // Google signs some tokens with its issuer without the scheme: checked below instead.
        let google = provider.kind == ProviderKind::Google;
        let verifier = client.id_token_verifier().require_issuer_match(!google);
        let claims = match nonce {
            Some(expected) => id_token.claims(&verifier, &Nonce::new(expected.to_owned())),
            None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
        }
        .map_err(|e| bad(&e))?;
        let iss = claims.issuer().as_str();
        if google && iss != issuer && iss != issuer.trim_start_matches("https://") {
            return Err(bad(&"unexpected issuer"));
        }
        Ok(oidc_identity(provider, claims))
    }

    /// Checks an access token a provider SDK handed the client: that the provider issued it to
    /// our app (a token from another app must not sign anyone in here), then reads the person.
    ///
    /// Errors: BAD_USER_INPUT (`provider`: OpenID Connect takes an ID token; `accessToken`),
    /// PROVIDER_ERROR.
    pub async fn verify_access_token(&self, name: &str, token: &str) -> AppResult<ExternalIdentity> {
        let provider = self.find(name)?;
        let token = token.trim();
        let secret = provider.client_secret.as_ref().map(|s| s.expose_secret().to_owned()).unwrap_or_default();
        match &provider.endpoints {
            Endpoints::Oidc { .. } => Err(AppError::bad_input("provider", "takes an idToken, not an accessToken")),
            Endpoints::Github { api, .. } => {
                #[derive(Deserialize)]
                struct Check {
                    app: App,
                }
                #[derive(Deserialize)]
                struct App {
                    client_id: String,
                }
                let url = format!("{api}/applications/{}/token", provider.client_id);
                let response = self
                    .http
                    .post(url)
                    .basic_auth(&provider.client_id, Some(&secret))
                    .header(reqwest::header::ACCEPT, "application/vnd.github+json")
                    .json(&serde_json::json!({ "access_token": token }))
                    .send()
                    .await
                    .map_err(|e| failed(provider, e.without_url()))?;
                if matches!(response.status().as_u16(), 404 | 422) {
                    return Err(AppError::bad_input("accessToken", "was not issued to this app by the provider"));
                }
                let check: Check = read_json(provider, response).await?;
                if check.app.client_id != provider.client_id {
                    return Err(AppError::bad_input("accessToken", "was not issued to this app by the provider"));
                }
                self.github_identity(provider, token).await
            }
            Endpoints::Facebook { graph, .. } => {
                #[derive(Deserialize)]
                struct Debug {
                    data: DebugData,
                }
                #[derive(Deserialize)]
                struct DebugData {
                    #[serde(default)]
                    is_valid: bool,
                    app_id: Option<String>,
                    user_id: Option<String>,
                }
                let app_token = format!("{}|{secret}", provider.client_id);
                let response = self
                    .http
                    .get(format!("{graph}/debug_token"))
                    .query(&[("input_token", token), ("access_token", app_token.as_str())])
                    .send()
                    .await
                    .map_err(|e| failed(provider, e.without_url()))?;
                let debug: Debug = read_json(provider, response).await?;
                let ours = debug.data.is_valid && debug.data.app_id.as_deref() == Some(provider.client_id.as_str());
                let Some(user) = debug.data.user_id.filter(|_| ours) else {
                    return Err(AppError::bad_input("accessToken", "was not issued to this app by the provider"));
                };
                self.facebook_identity(provider, token, Some(&user)).await
            }
        }
    }

    /// The person behind a GitHub token: the account id, and the primary address with
    /// GitHub's own `verified` flag for it.
    async fn github_identity(&self, provider: &Provider, token: &str) -> AppResult<ExternalIdentity> {
        let Endpoints::Github { api, .. } = &provider.endpoints else { return Err(failed(provider, "not GitHub")) };
        #[derive(Deserialize)]
        struct GithubUser {
            id: u64,
            name: Option<String>,
        }
        #[derive(Deserialize)]
        struct GithubEmail {
            email: String,
            #[serde(default)]
            primary: bool,
            #[serde(default)]
            verified: bool,
        }
        let get = |path: &str| {
            self.http
                .get(format!("{api}{path}"))
                .bearer_auth(token)
                .header(reqwest::header::ACCEPT, "application/vnd.github+json")
                .send()
        };
        let response = get("/user").await.map_err(|e| failed(provider, e.without_url()))?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(AppError::bad_input("accessToken", "was refused by the provider"));
        }
        let user: GithubUser = read_json(provider, response).await?;
        let response = get("/user/emails").await.map_err(|e| failed(provider, e.without_url()))?;
        let emails: Vec<GithubEmail> = read_json(provider, response).await?;
        let (email, verified) = match emails.into_iter().find(|e| e.primary) {
            Some(primary) => (Some(primary.email), primary.verified),
            None => (None, false),
        };
        let (first_name, last_name) = match user.name.as_deref().map(str::trim) {
            Some(full) => match full.split_once(' ') {
                Some((first, last)) => (Some(first), Some(last)),
                None => (Some(full), None),
            },
            None => (None, None),
        };
        Ok(identity(provider, &user.id.to_string(), email.as_deref(), verified, first_name, last_name))
    }

    /// The person behind a Facebook token. `expected_user` (from the token check) must match.
    /// Facebook does not say whether an address is confirmed: the setting decides.
    async fn facebook_identity(
        &self,
        provider: &Provider,
        token: &str,
        expected_user: Option<&str>,
    ) -> AppResult<ExternalIdentity> {
        let Endpoints::Facebook { graph, email_verified, .. } = &provider.endpoints else {
            return Err(failed(provider, "not Facebook"));
        };
        #[derive(Deserialize)]
        struct Me {
            id: String,
            email: Option<String>,
            first_name: Option<String>,
            last_name: Option<String>,
        }
        let secret = provider.client_secret.as_ref().map(|s| s.expose_secret().to_owned()).unwrap_or_default();
        // appsecret_proof: Facebook's guard against a token stolen from another app's server.
        let mut proof = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(AppError::internal)?;
        proof.update(token.as_bytes());
        let proof = hex::encode(proof.finalize().into_bytes());
        let response = self
            .http
            .get(format!("{graph}/me"))
            .query(&[
                ("fields", "id,email,first_name,last_name"),
                ("access_token", token),
                ("appsecret_proof", proof.as_str()),
            ])
            .send()
            .await
            .map_err(|e| failed(provider, e.without_url()))?;
        if response.status() == reqwest::StatusCode::BAD_REQUEST
            || response.status() == reqwest::StatusCode::UNAUTHORIZED
        {
            return Err(AppError::bad_input("accessToken", "was refused by the provider"));
        }
        let me: Me = read_json(provider, response).await?;
        if expected_user.is_some_and(|expected| expected != me.id) {
            return Err(failed(provider, "the token's user and /me disagree"));
        }
        Ok(identity(
            provider,
            &me.id,
            me.email.as_deref(),
            *email_verified,
            me.first_name.as_deref(),
            me.last_name.as_deref(),
        ))
    }

    /// An OpenID Connect client from the provider's (cached) discovery document.
    async fn oidc_client(
        &self,
        provider: &Provider,
    ) -> AppResult<
        CoreClient<
            oauth2::EndpointSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointMaybeSet,
            oauth2::EndpointMaybeSet,
        >,
    > {
        let metadata = self.discover(provider).await?;
        let secret = provider.client_secret.as_ref().map(|s| ClientSecret::new(s.expose_secret().to_owned()));
        Ok(CoreClient::from_provider_metadata(metadata, ClientId::new(provider.client_id.clone()), secret))
    }

    async fn discover(&self, provider: &Provider) -> AppResult<CoreProviderMetadata> {
        let Endpoints::Oidc { issuer, .. } = &provider.endpoints else { return Err(failed(provider, "not OIDC")) };
        let cached = self.discovered.lock().unwrap_or_else(PoisonError::into_inner).get(&provider.name).cloned();
        if let Some((at, metadata)) = cached
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(metadata);
        }
        let issuer = IssuerUrl::new(issuer.clone()).map_err(|e| failed(provider, e))?;
        let metadata =
            CoreProviderMetadata::discover_async(issuer, &self.http).await.map_err(|e| failed(provider, e))?;
        self.discovered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(provider.name.clone(), (Instant::now(), metadata.clone()));
        Ok(metadata)
    }
}

/// A plain OAuth 2.0 consent URL (GitHub, Facebook).
fn oauth2_authorize(
    provider: &Provider,
    auth_url: String,
    redirect: RedirectUrl,
    state: CsrfToken,
    scope: &str,
    pkce: PkceCodeChallenge,
) -> AppResult<url::Url> {
    let client = BasicClient::new(ClientId::new(provider.client_id.clone()))
        .set_auth_uri(endpoint_url(provider, AuthUrl::new(auth_url))?)
        .set_redirect_uri(redirect);
    let request = client.authorize_url(move || state).add_scope(Scope::new(scope.to_owned()));
    Ok(request.set_pkce_challenge(pkce).url().0)
}

/// The identity an ID token's claims describe.
fn oidc_identity(provider: &Provider, claims: &CoreIdTokenClaims) -> ExternalIdentity {
    // The names in the default language (claims without a language tag).
    let given = claims.given_name().and_then(|n| n.get(None)).map(|n| n.as_str());
    let family = claims.family_name().and_then(|n| n.get(None)).map(|n| n.as_str());
    identity(
        provider,
        claims.subject().as_str(),
        claims.email().map(|e| e.as_str()),
        claims.email_verified() == Some(true),
        given,
        family,
    )
}

/// An identity with what the provider said cleaned up: an address that does not parse counts
/// as none, names that do not parse are dropped, and an over-long subject is cut (no real
/// provider sends one; the column holds 255).
fn identity(
    provider: &Provider,
    subject: &str,
    email: Option<&str>,
    email_verified: bool,
    first_name: Option<&str>,
    last_name: Option<&str>,
) -> ExternalIdentity {
    let email = email.and_then(|e| Email::parse(e).ok()).map(|e| e.as_str().to_owned());
    let name = |n: Option<&str>| n.and_then(|n| PersonName::parse(n, "name").ok()).map(|n| n.as_str().to_owned());
    ExternalIdentity {
        provider: provider.name.clone(),
        subject: subject.chars().take(MAX_SUBJECT_CHARS).collect(),
        email_verified: email_verified && email.is_some(),
        email,
        first_name: name(first_name),
        last_name: name(last_name),
    }
}

fn redirect_url(uri: &str) -> AppResult<RedirectUrl> {
    RedirectUrl::new(uri.to_owned()).map_err(|_| AppError::bad_input("redirectUri", "is not a valid URL"))
}

fn endpoint_url<T>(provider: &Provider, url: Result<T, url::ParseError>) -> AppResult<T> {
    url.map_err(|e| failed(provider, e))
}

/// PROVIDER_ERROR, with the detail logged.
fn failed(provider: &Provider, error: impl Display) -> AppError {
    tracing::warn!(provider = %provider.name, error = %error, "a sign-in provider failed");
    AppError::Provider(provider.name.clone())
}

/// BAD_USER_INPUT on `field`, with the reason logged at debug level.
fn invalid(provider: &Provider, field: &'static str, message: &str, error: impl Display) -> AppError {
    tracing::debug!(provider = %provider.name, error = %error, "a sign-in proof was refused");
    AppError::bad_input(field, message)
}

/// A token request's failure: the provider refusing the code is the client's problem
/// (BAD_USER_INPUT on `code`); anything else is the provider's. GitHub answers refusals with
/// 200 and an `error` member, which does not parse as tokens.
fn refused<RE: std::error::Error + 'static, T: oauth2::ErrorResponse + 'static>(
    provider: &Provider,
    error: RequestTokenError<RE, T>,
) -> AppError {
    let refusal = match &error {
        RequestTokenError::ServerResponse(_) => true,
        RequestTokenError::Parse(_, body) => serde_json::from_slice::<serde_json::Value>(body)
            .is_ok_and(|v| v.get("error").is_some_and(|e| e.is_string())),
        _ => false,
    };
    if refusal {
        return invalid(
            provider,
            "code",
            "was refused by the provider (used, expired or not for this redirectUri)",
            error,
        );
    }
    failed(provider, error)
}

/// A provider API's JSON answer, read up to [`MAX_ANSWER_BYTES`]; anything but a 2xx with the
/// expected JSON is PROVIDER_ERROR.
async fn read_json<T: serde::de::DeserializeOwned>(
    provider: &Provider,
    mut response: reqwest::Response,
) -> AppResult<T> {
    let status = response.status();
    if !status.is_success() {
        return Err(failed(provider, format!("answered HTTP {status}")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(provider, e.without_url()))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(failed(provider, "answered more than 1 MiB"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| failed(provider, format!("unusable JSON at line {}", e.line())))
}
