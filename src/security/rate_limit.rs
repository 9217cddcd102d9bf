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
    kv::{Admission, Hit, Kv, Write},
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
    /// Errors: RATE_LIMITED with the whole seconds until a hit would be admitted;
    /// SERVICE_UNAVAILABLE when the KV cannot be reached (the operation then does not run:
    /// limits fail closed).
    pub async fn hit(&self, rule: Rule, subject: &str) -> AppResult<()> {
        match self.take(rule, subject).await? {
            Taken::Admitted { .. } => Ok(()),
            Taken::Refused { retry_after } => Err(AppError::RateLimited { retry_after }),
        }
    }

    /// [`hit`](Self::hit) for each `(rule, subject)` in order, stopping at the first refusal,
    /// whose error it returns: the hits before it are counted, none after it. One KV round trip
    /// (a login's per-address and per-account counts go together this way).
    ///
    /// Errors: as `hit`.
    pub async fn hit_each(&self, hits: &[(Rule, &str)]) -> AppResult<()> {
        // A rule admitting nothing refuses without the KV; the hits before it still count.
        let counted = hits.iter().position(|(rule, _)| rule.limit == 0).unwrap_or(hits.len());
        let keys: Vec<(String, Rule)> =
            hits[..counted].iter().map(|&(rule, subject)| (key(rule, subject), rule)).collect();
        let each: Vec<Hit<'_>> = keys
            .iter()
            .map(|(key, rule)| Hit { key, interval_ms: interval_ms(*rule), window_ms: window_ms(*rule) })
            .collect();
        let now_ms = self.clock.now().timestamp_millis();
        for answer in self.kv.admit_each(&each, now_ms).await? {
            if let Admission::Refused { wait } = answer {
                return Err(AppError::RateLimited { retry_after: retry_after(wait) });
            }
        }
        match hits.get(counted) {
            Some((rule, _)) => Err(AppError::RateLimited { retry_after: rule.window.as_secs().max(1) }),
            None => Ok(()),
        }
    }

    /// Counts a hit by `subject` under `rule` and says how many more would fit now: a sliding
    /// count, for callers that act when it fills (a lockout). Of concurrent hits at one
    /// instant, each sees a different `remaining`, so exactly one sees 0.
    pub async fn take(&self, rule: Rule, subject: &str) -> AppResult<Taken> {
        let window_ms = window_ms(rule);
        if rule.limit == 0 {
            return Ok(Taken::Refused { retry_after: rule.window.as_secs().max(1) });
        }
        let interval_ms = interval_ms(rule);
        let now_ms = self.clock.now().timestamp_millis();
        Ok(match self.kv.admit(&key(rule, subject), now_ms, interval_ms, window_ms).await? {
            Admission::Admitted { backlog } => {
                let counted = u32::try_from(millis(backlog).div_ceil(interval_ms.unsigned_abs())).unwrap_or(u32::MAX);
                Taken::Admitted { remaining: rule.limit.saturating_sub(counted) }
            }
            Admission::Refused { wait } => Taken::Refused { retry_after: retry_after(wait) },
        })
    }

    /// How many of `subject`'s hits under `rule` still count now (without counting one).
    pub async fn counted(&self, rule: Rule, subject: &str) -> AppResult<u32> {
        let now_ms = self.clock.now().timestamp_millis();
        let tat = self.kv.get(&key(rule, subject)).await?.and_then(|v| v.parse::<i64>().ok()).unwrap_or(now_ms);
        let backlog = tat.saturating_sub(now_ms).max(0).unsigned_abs();
        Ok(u32::try_from(backlog.div_ceil(interval_ms(rule).unsigned_abs())).unwrap_or(u32::MAX))
    }
}

/// The writes that forget each subject's hits under its rule (after it proved who it is, say),
/// for [`Kv::write`] alone or with the caller's own writes.
pub fn forgetting(counts: &[(Rule, &str)]) -> Vec<Write> {
    counts.iter().map(|&(rule, subject)| Write::Delete { key: key(rule, subject) }).collect()
}

/// What [`RateLimiter::take`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Counted; `remaining` more hits fit now.
    Admitted { remaining: u32 },
    /// Not counted: the limit is full for `retry_after` more seconds.
    Refused { retry_after: u64 },
}

/// The milliseconds one hit adds to the count. Counts are kept in whole milliseconds, so a limit
/// above one hit per millisecond of its window (say 1,000,000 a minute) counts as one per
/// millisecond; the interval is never 0.
fn interval_ms(rule: Rule) -> i64 {
    (window_ms(rule) / i64::from(rule.limit.max(1))).max(1)
}

/// Whole seconds until a refused hit would be admitted, at least one.
fn retry_after(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis().div_ceil(1000)).unwrap_or(u64::MAX).max(1)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn window_ms(rule: Rule) -> i64 {
    i64::try_from(rule.window.as_millis()).unwrap_or(i64::MAX).max(1000)
}

/// The window is part of the key: rules of one name with different windows (a cooldown and a
/// daily cap) count apart.
fn key(rule: Rule, subject: &str) -> String {
    format!("rl:{}:{}:{subject}", rule.name, window_ms(rule) / 1000)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::{clock::ManualClock, db, kv::DatabaseKv};

    fn rule(name: &'static str, limit: u32) -> Rule {
        Rule { name, limit, window: Duration::from_secs(60) }
    }

    #[tokio::test]
    async fn hits_in_order_count_those_before_a_refusal_and_none_after() {
        let dir = tempfile::TempDir::new().unwrap_or_else(|e| panic!("{e}"));
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("limits.db").display());
        db::migrate(&url).await.unwrap_or_else(|e| panic!("{e:?}"));
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Utc::now()));
        let kv = DatabaseKv::sqlite(&url, Arc::clone(&clock)).await.unwrap_or_else(|e| panic!("{e:?}"));
        let limiter = RateLimiter::new(Arc::new(kv), clock);
        let refused = |result: AppResult<()>| matches!(result, Err(AppError::RateLimited { .. }));

        // A rule admitting nothing refuses after the hits before it are counted...
        assert!(refused(limiter.hit_each(&[(rule("first", 2), "s"), (rule("never", 0), "s")]).await));
        assert_eq!(limiter.counted(rule("first", 2), "s").await.ok(), Some(1));
        // ...and before any hit after it.
        assert!(refused(limiter.hit_each(&[(rule("never", 0), "s"), (rule("after", 2), "s")]).await));
        assert_eq!(limiter.counted(rule("after", 2), "s").await.ok(), Some(0));
        // A full count refuses, and the later rule is not counted.
        assert!(limiter.hit_each(&[(rule("first", 2), "s"), (rule("after", 2), "s")]).await.is_ok());
        assert!(refused(limiter.hit_each(&[(rule("first", 2), "s"), (rule("after", 2), "s")]).await));
        assert_eq!(limiter.counted(rule("after", 2), "s").await.ok(), Some(1));
    }
}
