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
}

impl ClientInfo {
    /// The rate-limit subject for per-IP rules.
    pub fn ip_or_unknown(&self) -> &str {
        self.ip.as_deref().unwrap_or("unknown")
    }
}
