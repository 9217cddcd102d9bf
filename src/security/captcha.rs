//! CAPTCHA checks on the operations bots target (register, login, requestPasswordReset,
//! requestPhoneLogin), verified server-side with the provider's siteverify endpoint: Google
//! reCAPTCHA v2 and v3 (v3 answers carry a score, which must reach the configured minimum),
//! hCaptcha and Cloudflare Turnstile, which share one request and answer shape.
//!
//! Modes: `off` (default), `always` (every such operation needs a token), and `after_failures`
//! (a login needs one once an address or an account has failed that many logins within the
//! last hour, a sliding count in the KV under the injected clock). A missing
//! token is CAPTCHA_REQUIRED, a refused one CAPTCHA_INVALID; a provider that cannot be reached
//! or answers nonsense is CAPTCHA_UNAVAILABLE: the operation does not run (fail closed).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{
    crypto::sha256_hex,
    rate_limit::{RateLimiter, Rule},
};
use crate::{
    client::ClientInfo,
    config::{CaptchaMode, CaptchaProvider, Settings},
    error::{AppError, AppResult},
};

/// The longest a siteverify call may take before the operation fails closed.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(5);
const FAILURE_WINDOW: Duration = Duration::from_secs(3600);

/// An operation that may need a CAPTCHA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Register,
    Login,
    PasswordReset,
    PhoneLogin,
}

/// What a frontend needs to show the widget (`authConfig.captcha`).
#[derive(Debug, Clone)]
pub struct PublicCaptcha {
    pub provider: &'static str,
    pub site_key: String,
    pub mode: &'static str,
}

/// The siteverify answer, the fields idgate reads.
#[derive(Deserialize)]
struct Verdict {
    success: bool,
    /// reCAPTCHA v3 only: 0.0 (bot) to 1.0 (human).
    score: Option<f64>,
}

#[derive(Clone)]
pub struct Captcha {
    mode: CaptchaMode,
    provider: CaptchaProvider,
    secret: Option<SecretString>,
    site_key: String,
    verify_url: String,
    min_score: f64,
    after_failures: u32,
    http: reqwest::Client,
    limiter: RateLimiter,
}

impl Captcha {
    /// Configured from the settings (validated there: a mode other than off has a secret).
    pub fn from_settings(settings: &Settings, limiter: RateLimiter) -> AppResult<Self> {
        let http = reqwest::Client::builder().timeout(VERIFY_TIMEOUT).build().map_err(AppError::internal)?;
        Ok(Self {
            mode: settings.captcha_mode,
            provider: settings.captcha_provider,
            secret: settings.captcha_secret.clone(),
            site_key: settings.captcha_site_key.clone(),
            verify_url: settings
                .captcha_verify_url
                .clone()
                .unwrap_or_else(|| settings.captcha_provider.verify_url().to_owned()),
            min_score: settings.captcha_min_score,
            after_failures: settings.captcha_after_failures,
            http,
            limiter,
        })
    }

    /// The widget's configuration, when a mode is on.
    pub fn public(&self) -> Option<PublicCaptcha> {
        let mode = match self.mode {
            CaptchaMode::Off => return None,
            CaptchaMode::Always => "ALWAYS",
            CaptchaMode::AfterFailures => "AFTER_FAILURES",
        };
        Some(PublicCaptcha { provider: self.provider.name(), site_key: self.site_key.clone(), mode })
    }

    /// True when no action ever needs a CAPTCHA (and [`check`](Self::check) does nothing).
    pub fn is_off(&self) -> bool {
        self.mode == CaptchaMode::Off
    }

    /// Checks the CAPTCHA an `action` by `client` needs, if any; `account` names the targeted
    /// address for the failure count.
    ///
    /// Errors: CAPTCHA_REQUIRED, CAPTCHA_INVALID, CAPTCHA_UNAVAILABLE.
    pub async fn check(
        &self,
        action: Action,
        token: Option<&str>,
        client: &ClientInfo,
        account: Option<&str>,
    ) -> AppResult<()> {
        let needed = match self.mode {
            CaptchaMode::Off => false,
            CaptchaMode::Always => true,
            CaptchaMode::AfterFailures => action == Action::Login && self.too_many_failures(client, account).await?,
        };
        if !needed {
            return Ok(());
        }
        let token = token.map(str::trim).filter(|t| !t.is_empty()).ok_or(AppError::CaptchaRequired)?;
        if token.len() > 4096 {
            return Err(AppError::CaptchaInvalid);
        }
        self.verify(token, client).await
    }

    /// Counts a failed login by `client` on `account` (for `after_failures`).
    pub async fn record_failure(&self, client: &ClientInfo, account: &str) -> AppResult<()> {
        if self.mode != CaptchaMode::AfterFailures {
            return Ok(());
        }
        for (rule, subject) in self.failure_counts(client, Some(account)) {
            // A full count stays full; the refusal itself means nothing here.
            self.limiter.take(rule, &subject).await?;
        }
        Ok(())
    }

    async fn too_many_failures(&self, client: &ClientInfo, account: Option<&str>) -> AppResult<bool> {
        for (rule, subject) in self.failure_counts(client, account) {
            if self.limiter.counted(rule, &subject).await? >= self.after_failures {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The failure counts a login touches: its client address's and its account's.
    fn failure_counts(&self, client: &ClientInfo, account: Option<&str>) -> Vec<(Rule, String)> {
        let rule = |name| Rule { name, limit: self.after_failures, window: FAILURE_WINDOW };
        let mut counts = vec![(rule("captcha-failures-ip"), client.ip_or_unknown())];
        if let Some(account) = account {
            counts.push((rule("captcha-failures-account"), sha256_hex(account.to_lowercase().as_bytes())));
        }
        counts
    }

    async fn verify(&self, token: &str, client: &ClientInfo) -> AppResult<()> {
        let Some(secret) = &self.secret else { return Err(AppError::CaptchaUnavailable) };
        let mut form = vec![("secret", secret.expose_secret()), ("response", token)];
        let ip = client.ip_text();
        if let Some(ip) = ip.as_deref() {
            form.push(("remoteip", ip));
        }
        let answer = self.http.post(&self.verify_url).form(&form).send().await.map_err(|e| {
            tracing::warn!(error = %e, "the CAPTCHA provider could not be reached");
            AppError::CaptchaUnavailable
        })?;
        if !answer.status().is_success() {
            tracing::warn!(status = %answer.status(), "the CAPTCHA provider answered with an error");
            return Err(AppError::CaptchaUnavailable);
        }
        let verdict: Verdict = answer.json().await.map_err(|e| {
            tracing::warn!(error = %e, "the CAPTCHA provider's answer was not understood");
            AppError::CaptchaUnavailable
        })?;
        let human_enough = verdict.score.is_none_or(|score| score >= self.min_score);
        if verdict.success && human_enough { Ok(()) } else { Err(AppError::CaptchaInvalid) }
    }
}
