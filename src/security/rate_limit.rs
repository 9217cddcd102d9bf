//! Sliding rate limits counted in the KV, so every instance shares one count: GCRA (the
//! generic cell rate algorithm, see [`Kv::admit`]). A rule of `limit` per `window` admits
//! `limit` hits at once and then one every `window / limit`, so there is no double burst at a
//! window edge, and a cooldown (`limit` 1) is exact. Time comes from the injected clock; each
//! request counts once per rule it passes through, so a client that aliases or batches an
//! operation pays for every copy.

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

    /// Counts a hit by `subject` under `rule`. A limit of 0 admits nothing.
    ///
    /// Errors: RATE_LIMITED with the whole seconds until a hit would be admitted; INTERNAL when
    /// the KV cannot be reached (the operation then does not run: limits fail closed).
    pub async fn hit(&self, rule: Rule, subject: &str) -> AppResult<()> {
        let window_ms = window_ms(rule);
        if rule.limit == 0 {
            return Err(AppError::RateLimited { retry_after: rule.window.as_secs().max(1) });
        }
        let interval_ms = window_ms / i64::from(rule.limit);
        let key = key(rule, subject);
        let now_ms = self.clock.now().timestamp_millis();
        match self.kv.admit(&key, now_ms, interval_ms, window_ms).await? {
            None => Ok(()),
            Some(wait) => {
                let retry_after = u64::try_from(wait.as_millis().div_ceil(1000)).unwrap_or(u64::MAX).max(1);
                Err(AppError::RateLimited { retry_after })
            }
        }
    }

    /// Forgets `subject`'s hits under `rule` (after it proved who it is, say).
    pub async fn forget(&self, rule: Rule, subject: &str) -> AppResult<()> {
        self.kv.delete(&key(rule, subject)).await
    }
}

fn window_ms(rule: Rule) -> i64 {
    i64::try_from(rule.window.as_millis()).unwrap_or(i64::MAX).max(1000)
}

/// The window is part of the key: rules of one name with different windows (a cooldown and a
/// daily cap) count apart.
fn key(rule: Rule, subject: &str) -> String {
    format!("rl:{}:{}:{subject}", rule.name, window_ms(rule) / 1000)
}
