//! Outgoing messages: mail ([`mail::Mailer`]: SMTP or a file outbox), SMS ([`sms::SmsSender`]:
//! the Twilio API or a file outbox), and the templates that write them in each locale.

pub mod mail;
mod outbox;
pub mod sms;
pub mod templates;
