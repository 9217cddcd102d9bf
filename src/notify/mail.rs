//! Mail delivery behind a small trait. The embedded backend writes each message as an RFC 5322
//! `.eml` file into an outbox directory, where a developer (or a test) reads it; SMTP delivery
//! arrives with the verification work.

use std::path::PathBuf;

use async_trait::async_trait;
use lettre::{
    Message,
    message::{Mailbox, header::ContentType},
};

use crate::error::{AppError, AppResult};

/// A message ready to send. `text` may hold a code: never log it.
pub struct OutgoingMail {
    pub to: String,
    pub subject: String,
    pub text: String,
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
        let from = from.parse().map_err(|e| AppError::internal(format!("IDGATE_MAIL_FROM is not a mailbox: {e}")))?;
        tokio::fs::create_dir_all(&dir).await.map_err(AppError::internal)?;
        Ok(Self { dir, from })
    }

    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }
}

/// Renders a plain-text message with lettre's builder (headers, encoding, Message-ID).
pub fn render(from: &Mailbox, mail: &OutgoingMail) -> AppResult<Vec<u8>> {
    let to: Mailbox = mail.to.parse().map_err(AppError::internal)?;
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(mail.text.clone())
        .map_err(AppError::internal)?;
    Ok(message.formatted())
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: OutgoingMail) -> AppResult<()> {
        let bytes = render(&self.from, &mail)?;
        let name = format!("{}-{}.eml", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"), uuid::Uuid::new_v4());
        // Write then rename, so a reader never sees half a message.
        let partial = self.dir.join(format!(".{name}.part"));
        tokio::fs::write(&partial, bytes).await.map_err(AppError::internal)?;
        tokio::fs::rename(&partial, self.dir.join(&name)).await.map_err(AppError::internal)?;
        tracing::info!(file = %name, "mail written to the outbox");
        Ok(())
    }
}
