//! Outgoing messages: the [`mail::Mailer`] trait with its delivery backends, and the texts of
//! the messages idgate sends.

pub mod mail;
pub mod templates;
