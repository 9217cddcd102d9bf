//! SMS delivery behind a small trait, with two backends: [`TwilioSms`] posts to the Twilio
//! Messages API (or anything speaking it at another base URL, such as a test's mock), and
//! [`OutboxSms`] writes each message as a `.sms` file into a directory.

use std::{path::PathBuf, time::Duration};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::outbox;
use crate::error::{AppError, AppResult};

/// A text message ready to send. `to` is E.164 (`+15551234567`); `body` may hold a code: never
/// log it.
pub struct OutgoingSms {
    pub to: String,
    pub body: String,
}

/// Delivers SMS; an error means the message was not accepted for delivery.
#[async_trait]
pub trait SmsSender: Send + Sync + 'static {
    async fn send(&self, sms: OutgoingSms) -> AppResult<()>;
}

/// Writes every message into a directory as `<time>-<id>.sms`: a `To: <number>` line, a blank
/// line, then the body.
pub struct OutboxSms {
    dir: PathBuf,
}

impl OutboxSms {
    /// Creates the directory if needed.
    pub fn new(dir: PathBuf) -> AppResult<Self> {
        std::fs::create_dir_all(&dir).map_err(AppError::internal)?;
        Ok(Self { dir })
    }

    /// The directory messages are written to.
    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }
}

#[async_trait]
impl SmsSender for OutboxSms {
    async fn send(&self, sms: OutgoingSms) -> AppResult<()> {
        let content = format!("To: {}\n\n{}\n", sms.to, sms.body);
        let name = outbox::write(&self.dir, "sms", content.into_bytes())?;
        tracing::info!(file = %name, "SMS written to the outbox");
        Ok(())
    }
}

/// Sends through the Twilio Messages API: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`
/// with HTTP basic auth (account SID, auth token).
pub struct TwilioSms {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    account_sid: String,
    auth_token: SecretString,
    from: String,
}

impl TwilioSms {
    /// A sender for the account `account_sid` posting to `base_url` (`https://api.twilio.com` in
    /// production), sending from `from` (a Twilio number in E.164). `timeout` bounds each call.
    ///
    /// Errors: INTERNAL when the base URL or the SID cannot form the endpoint.
    pub fn new(
        base_url: &str,
        account_sid: &str,
        auth_token: SecretString,
        from: &str,
        timeout: Duration,
    ) -> AppResult<Self> {
        // The SID goes into the path: only letters and digits, as Twilio issues them.
        if account_sid.is_empty() || !account_sid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(AppError::internal_msg("the Twilio account SID must be letters and digits"));
        }
        let endpoint = format!("{}/2010-04-01/Accounts/{account_sid}/Messages.json", base_url.trim_end_matches('/'));
        let endpoint = reqwest::Url::parse(&endpoint)
            .map_err(|e| AppError::internal(format!("the SMS gateway URL is not valid: {e}")))?;
        let client = reqwest::Client::builder().timeout(timeout).build().map_err(AppError::internal)?;
        Ok(Self { client, endpoint, account_sid: account_sid.to_owned(), auth_token, from: from.to_owned() })
    }
}

/// The part of Twilio's error answer worth logging: its numeric code names the problem (for
/// example 21211, an invalid `To`); its message may repeat the number, so it is not kept.
#[derive(Deserialize)]
struct TwilioError {
    code: Option<u64>,
}

#[async_trait]
impl SmsSender for TwilioSms {
    async fn send(&self, sms: OutgoingSms) -> AppResult<()> {
        let form = [("To", sms.to.as_str()), ("From", self.from.as_str()), ("Body", sms.body.as_str())];
        let response = self
            .client
            .post(self.endpoint.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                tracing::error!(error = %e, timeout = e.is_timeout(), "the SMS gateway could not be reached");
                AppError::DeliveryFailed
            })?;
        let status = response.status();
        if status.is_success() {
            tracing::info!(status = status.as_u16(), "SMS accepted by the gateway");
            return Ok(());
        }
        let code = response.json::<TwilioError>().await.ok().and_then(|e| e.code);
        tracing::error!(status = status.as_u16(), twilio_code = ?code, "the SMS gateway refused the message");
        Err(AppError::DeliveryFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_outbox_writes_one_readable_file_per_message() {
        let dir = tempfile::tempdir().expect("temp dir");
        let outbox = OutboxSms::new(dir.path().join("sms")).expect("creates the directory");
        let sms = OutgoingSms { to: "+15551234567".into(), body: "Your idgate code is 123456.".into() };
        outbox.send(sms).await.expect("written");
        let files: Vec<_> = std::fs::read_dir(outbox.dir()).expect("dir").filter_map(Result::ok).collect();
        assert_eq!(files.len(), 1, "no temporary file is left behind");
        let path = files[0].path();
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("sms"));
        let content = std::fs::read_to_string(path).expect("readable");
        assert_eq!(content, "To: +15551234567\n\nYour idgate code is 123456.\n");
    }

    #[test]
    fn the_endpoint_is_the_twilio_messages_resource() {
        let token = SecretString::from("token");
        let twilio = TwilioSms::new("http://127.0.0.1:9/", "AC123", token, "+15550000000", Duration::from_secs(5));
        let twilio = twilio.expect("valid");
        assert_eq!(twilio.endpoint.as_str(), "http://127.0.0.1:9/2010-04-01/Accounts/AC123/Messages.json");
    }

    #[test]
    fn a_sid_that_could_change_the_path_is_refused() {
        for sid in ["", "AC1/../x", "AC 1", "AC1?x=1"] {
            let token = SecretString::from("token");
            assert!(
                TwilioSms::new("https://api.twilio.com", sid, token, "+1555", Duration::from_secs(5)).is_err(),
                "{sid}"
            );
        }
    }

    #[test]
    fn a_base_url_that_is_not_a_url_is_refused() {
        let token = SecretString::from("token");
        assert!(TwilioSms::new("api.twilio.com", "AC1", token, "+1555", Duration::from_secs(5)).is_err());
    }
}
