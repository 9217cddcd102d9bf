//! What idgate knows about the other end of a request, captured by the HTTP layer and handed to
//! services for rate limits and session records.

/// The caller's network identity. Both values are untrusted input: stored and compared, never
/// used for authorization.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The peer address of the connection.
    pub ip: Option<String>,
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
    pub fn ip_or_unknown(&self) -> &str {
        self.ip.as_deref().unwrap_or("unknown")
    }
}
