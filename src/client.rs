//! What idgate knows about the other end of a request, captured by the HTTP layer and handed to
//! services for rate limits and session records.

use std::net::IpAddr;

/// The caller's network identity. Both values are untrusted input: stored and compared, never
/// used for authorization.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's address: the connection's peer, or what trusted proxies say it is. Kept
    /// as an address and written out only where a rule or a record needs the text, which
    /// most requests never reach.
    pub ip: Option<IpAddr>,
    /// The User-Agent header, truncated to 512 characters.
    pub user_agent: Option<String>,
    /// The first language of Accept-Language (like `es-MX`), for messages to people whose
    /// account has no locale yet.
    pub locale: Option<String>,
}

impl ClientInfo {
    /// The preferred language tag of an Accept-Language header, if it is a plausible tag.
    pub fn locale_from_accept_language(header: &str) -> Option<String> {
        let tag = header.split(',').next()?.split(';').next()?.trim();
        let plausible = (2..=16).contains(&tag.len()) && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        plausible.then(|| tag.to_owned())
    }

    /// The rate-limit subject for per-IP rules.
    pub fn ip_or_unknown(&self) -> String {
        self.ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }

    /// The address as session and audit records keep it.
    pub fn ip_text(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }
}
