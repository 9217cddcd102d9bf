//! Limits on messages idgate sends on a client's request: a cooldown and a daily cap per
//! address and kind, a per-IP cap on SMS, and an optional country allow-list for SMS (against
//! SMS pumping, OWASP "SMS pumping" / toll fraud). Counted in the KV, so shared by instances.

use std::time::Duration;

use super::rate_limit::{RateLimiter, Rule};
use crate::{
    client::ClientInfo,
    domain::Phone,
    error::{AppError, AppResult},
};

/// The configured send limits.
#[derive(Clone)]
pub struct SendLimits {
    pub limiter: RateLimiter,
    /// Minimum wait between two messages of one kind to one address.
    pub cooldown: Duration,
    /// Messages of one kind to one address per day.
    pub per_address_per_day: u32,
    /// SMS sent on requests from one IP per hour.
    pub sms_per_ip_per_hour: u32,
    /// ISO 3166 codes SMS may go to; empty: any.
    pub sms_countries: Vec<String>,
}

impl SendLimits {
    /// The limits as configured, counted by `limiter`.
    pub fn from_settings(limiter: RateLimiter, settings: &crate::config::Settings) -> Self {
        Self {
            limiter,
            cooldown: Duration::from_secs(settings.otp_resend_cooldown_secs),
            per_address_per_day: settings.messages_per_address_per_day,
            sms_per_ip_per_hour: settings.sms_rate_per_ip,
            sms_countries: settings.sms_allowed_country_list(),
        }
    }

    /// Counts a message of `kind` to `address` (hashed into the key by the limiter's caller).
    ///
    /// Errors: RATE_LIMITED with the wait.
    pub async fn mail(&self, kind: &'static str, address_digest: &str) -> AppResult<()> {
        let cooldown = Rule { name: kind, limit: 1, window: self.cooldown };
        self.limiter.hit(cooldown, address_digest).await?;
        let daily = Rule { name: kind, limit: self.per_address_per_day, window: Duration::from_secs(24 * 3600) };
        self.limiter.hit(daily, &format!("day:{address_digest}")).await
    }

    /// Checks the country, then counts an SMS of `kind` to `phone` and from the client's IP.
    ///
    /// Errors: BAD_USER_INPUT (`phone`) for a country not allowed, RATE_LIMITED.
    pub async fn sms(&self, kind: &'static str, phone: &Phone, client: &ClientInfo) -> AppResult<()> {
        if !self.sms_countries.is_empty() && !phone.country().is_some_and(|c| self.sms_countries.contains(&c)) {
            return Err(AppError::bad_input("phone", "text messages cannot be sent to this country"));
        }
        let per_ip = Rule { name: "sms-ip", limit: self.sms_per_ip_per_hour, window: Duration::from_secs(3600) };
        self.limiter.hit(per_ip, &client.ip_or_unknown()).await?;
        self.mail(kind, phone.as_str()).await
    }
}
