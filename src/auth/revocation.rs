//! Immediate revocation of access tokens: a revoked session's id sits in the KV until the last
//! access token it issued would have expired anyway, and every token check looks there. With
//! Redis every instance sees the mark at once.

use std::{sync::Arc, time::Duration};

use uuid::Uuid;

use crate::{error::AppResult, kv::Kv};

/// Marks and recognises revoked sessions.
#[derive(Clone)]
pub struct Revocations {
    kv: Arc<dyn Kv>,
    /// Access-token lifetime plus clock leeway.
    keep_for: Duration,
}

impl Revocations {
    pub fn new(kv: Arc<dyn Kv>, keep_for: Duration) -> Self {
        Self { kv, keep_for }
    }

    /// Refuses the access tokens of `sessions` from now on.
    pub async fn mark(&self, sessions: &[Uuid], reason: &str) -> AppResult<()> {
        for session in sessions {
            self.kv.set(&key(*session), reason, self.keep_for).await?;
        }
        Ok(())
    }

    /// Whether `session` was revoked while its tokens may still be live.
    pub async fn is_revoked(&self, session: Uuid) -> AppResult<bool> {
        Ok(self.kv.get(&key(session)).await?.is_some())
    }
}

fn key(session: Uuid) -> String {
    format!("revoked:{}", session.simple())
}
