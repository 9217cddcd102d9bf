//! Mail delivery behind a small trait, with two backends: [`SmtpMailer`] hands messages to an
//! SMTP server, [`OutboxMailer`] writes each one as an RFC 5322 `.eml` file into a directory,
//! where a developer (or a test) reads it. Both send the same multipart/alternative message
//! (plain text, then HTML), built with lettre.

use std::{path::PathBuf, time::Duration};

use async_trait::async_trait;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    address::Envelope,
    message::{Mailbox, MultiPart},
};

use super::outbox;
use crate::error::{AppError, AppResult};

/// A message ready to send. `text` and `html` may hold a code: never log them.
pub struct OutgoingMail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Delivers mail; an error means the message was not accepted for delivery.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, mail: OutgoingMail) -> AppResult<()>;
}

/// Writes every message into a directory as `<time>-<id>.eml`.
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl OutboxMailer {
    /// Creates the directory if needed.
    pub async fn new(dir: PathBuf, from: &str) -> AppResult<Self> {
        let from = parse_from(from)?;
        tokio::fs::create_dir_all(&dir).await.map_err(AppError::internal)?;
        Ok(Self { dir, from })
    }

    /// The directory messages are written to.
    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: OutgoingMail) -> AppResult<()> {
        let bytes = render(&self.from, &mail)?;
        let name = outbox::write(&self.dir, "eml", bytes)?;
        tracing::info!(file = %name, "mail written to the outbox");
        Ok(())
    }
}

/// Hands every message to an SMTP server, reusing connections from a small pool.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// A mailer for the server at `url`:
    /// - `smtp://host[:port]` (port 25): STARTTLS when the server offers it, else plaintext;
    ///   `?tls=required` refuses a server without STARTTLS (default port 587), and `?tls=none`
    ///   never starts TLS (for a local relay with a certificate nobody trusts);
    /// - `smtps://host[:port]` (port 465): TLS from the first byte;
    /// - `user:password@` in either authenticates (percent-encode special characters);
    /// - a path (`smtp://host/name`) is the name we give in EHLO, else the machine's hostname.
    ///
    /// Certificates are checked against the Mozilla roots. `timeout` bounds each SMTP command.
    /// Must be called within a Tokio runtime (the pool spawns its cleaner).
    ///
    /// Errors: INTERNAL when the URL or `from` cannot be used.
    pub fn new(url: &str, from: &str, timeout: Duration) -> AppResult<SmtpMailer> {
        let from = parse_from(from)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&smtp_url(url)?)
            .map_err(|e| AppError::internal(format!("the SMTP URL is not usable: {e}")))?
            .timeout(Some(timeout))
            .build();
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: OutgoingMail) -> AppResult<()> {
        let message = build(&self.from, &mail)?;
        match self.transport.send(message).await {
            Ok(response) => {
                tracing::info!(code = %response.code(), "mail accepted by the SMTP server");
                Ok(())
            }
            Err(e) => {
                // The error carries the server's answer, never the message: bodies hold codes.
                tracing::error!(error = %e, permanent = e.is_permanent(), timeout = e.is_timeout(), "SMTP delivery failed");
                Err(AppError::DeliveryFailed)
            }
        }
    }
}

/// Renders a message as RFC 5322 bytes: headers, Message-ID, and a multipart/alternative body
/// with the text part first and the HTML part last (the one clients prefer).
pub fn render(from: &Mailbox, mail: &OutgoingMail) -> AppResult<Vec<u8>> {
    Ok(build(from, mail)?.formatted())
}

fn build(from: &Mailbox, mail: &OutgoingMail) -> AppResult<Message> {
    let to: Mailbox = mail.to.parse().map_err(AppError::internal)?;
    // The envelope (SMTP's MAIL FROM and RCPT TO) from the mailboxes at hand: without it,
    // lettre parses both back out of the headers it has just written.
    let envelope = Envelope::new(Some(from.email.clone()), vec![to.email.clone()]).map_err(AppError::internal)?;
    Message::builder()
        .envelope(envelope)
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .multipart(MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone()))
        .map_err(AppError::internal)
}

fn parse_from(from: &str) -> AppResult<Mailbox> {
    from.parse().map_err(|e| AppError::internal(format!("the mail sender is not a mailbox: {e}")))
}

/// lettre reads a bare `smtp://` as plaintext only; we want STARTTLS whenever the server offers
/// it, so that becomes `?tls=opportunistic` on port 25. `?tls=none` is ours: lettre's plaintext.
fn smtp_url(raw: &str) -> AppResult<String> {
    // The URL may hold a password: errors name the problem, never the URL.
    let mut url = url::Url::parse(raw).map_err(|e| AppError::internal(format!("the SMTP URL is not valid: {e}")))?;
    if url.scheme() == "smtp" {
        let tls = url.query_pairs().find(|(key, _)| key == "tls").map(|(_, value)| value.into_owned());
        match tls.as_deref() {
            None => {
                if url.port().is_none() {
                    url.set_port(Some(25)).map_err(|()| AppError::internal_msg("the SMTP URL has no host"))?;
                }
                url.query_pairs_mut().append_pair("tls", "opportunistic");
            }
            Some("none") => url.set_query(None),
            Some(_) => {}
        }
    }
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> OutgoingMail {
        OutgoingMail {
            to: "alice@example.com".into(),
            subject: "Your code".into(),
            text: "Your code is 123456".into(),
            html: "<p>Your code is <b>123456</b></p>".into(),
        }
    }

    fn from() -> Mailbox {
        parse_from("idgate <no-reply@example.com>").expect("mailbox")
    }

    #[test]
    fn a_rendered_mail_is_multipart_alternative_with_text_then_html() {
        let raw = String::from_utf8(render(&from(), &mail()).expect("renders")).expect("ascii");
        assert!(raw.contains("To: alice@example.com\r\n"), "{raw}");
        assert!(raw.contains("Subject: Your code\r\n"));
        assert!(raw.contains("Content-Type: multipart/alternative;"));
        let text = raw.find("Content-Type: text/plain").expect("text part");
        let html = raw.find("Content-Type: text/html").expect("html part");
        assert!(text < html);
        assert!(raw.contains("Your code is 123456"));
        assert!(raw.contains("<p>Your code is <b>123456</b></p>"));
    }

    #[test]
    fn a_recipient_that_is_not_an_address_is_refused() {
        let mail = OutgoingMail { to: "not an address".into(), ..mail() };
        assert!(render(&from(), &mail).is_err());
    }

    #[test]
    fn a_sender_that_is_not_a_mailbox_is_refused() {
        assert!(parse_from("nobody").is_err());
    }

    #[test]
    fn a_bare_smtp_url_uses_starttls_when_offered_on_port_25() {
        assert_eq!(smtp_url("smtp://mail.example.com").expect("valid"), "smtp://mail.example.com:25?tls=opportunistic");
        assert_eq!(
            smtp_url("smtp://u:p@127.0.0.1:2525").expect("valid"),
            "smtp://u:p@127.0.0.1:2525?tls=opportunistic"
        );
    }

    #[test]
    fn explicit_tls_modes_are_kept_and_none_means_plaintext() {
        assert_eq!(smtp_url("smtp://h:587?tls=required").expect("valid"), "smtp://h:587?tls=required");
        assert_eq!(smtp_url("smtps://h").expect("valid"), "smtps://h");
        assert_eq!(smtp_url("smtp://h:25?tls=none").expect("valid"), "smtp://h:25");
    }

    #[test]
    fn an_invalid_smtp_url_is_refused_without_echoing_it() {
        let error = smtp_url("smtp://user:s3cret@[bad").expect_err("refused");
        let detail = std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default();
        assert!(!detail.contains("s3cret"), "{detail}");
    }

    #[tokio::test]
    async fn an_unknown_scheme_is_refused_at_construction() {
        assert!(SmtpMailer::new("http://mail.example.com", "a@example.com", Duration::from_secs(5)).is_err());
        assert!(
            SmtpMailer::new("smtp://mail.example.com?tls=sometimes", "a@example.com", Duration::from_secs(5)).is_err()
        );
        assert!(SmtpMailer::new("smtps://mail.example.com", "a@example.com", Duration::from_secs(5)).is_ok());
    }
}
