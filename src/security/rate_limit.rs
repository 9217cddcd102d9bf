//! Fixed-window rate limits counted in the KV, so every instance shares one count. Windows are
//! numbered by the injected clock; each request counts once per rule it passes through, so a
//! client that aliases or batches an operation pays for every copy.

use std::{sync::Arc, time::Duration};

use crate::{
    clock::Clock,
    error::{AppError, AppResult},
    kv::Kv,
};

/// One limit: at most `limit` hits per `window` for each subject.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub name: &'static str,
    pub limit: u32,
    pub window: Duration,
}

/// Counts hits against [`Rule`]s.
#[derive(Clone)]
pub struct RateLimiter {
    kv: Arc<dyn Kv>,
    clock: Arc<dyn Clock>,
}

impl RateLimiter {
    pub fn new(kv: Arc<dyn Kv>, clock: Arc<dyn Clock>) -> Self {
        Self { kv, clock }
    }

    /// Counts a hit by `subject` under `rule`.
    ///
    /// Errors: RATE_LIMITED with the seconds until the window ends.
    pub async fn hit(&self, rule: Rule, subject: &str) -> AppResult<()> {
        let window = rule.window.as_secs().max(1);
        let now = u64::try_from(self.clock.now().timestamp()).unwrap_or(0);
        let index = now / window;
        let key = format!("rl:{}:{subject}:{index}", rule.name);
        let count = self.kv.increment(&key, Duration::from_secs(window + 1)).await?;
        if count > u64::from(rule.limit) {
            let retry_after = (index + 1) * window - now;
            return Err(AppError::RateLimited { retry_after: retry_after.max(1) });
        }
        Ok(())
    }
}
