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
        self.hit_each_then(hits, None).await.map(drop)
    }

    /// [`hit_each`](Self::hit_each), then [`take`](Self::take) by `subject` under `rule` in the
    /// same KV round trip; nothing is taken when one of `hits` is refused. (A login counts its
    /// limits and reserves its attempt in the lockout count this way.)
    ///
    /// Errors: as `hit`, for `hits` only: a refused take is [`Taken::Refused`].
    pub async fn hit_each_then_take(&self, hits: &[(Rule, &str)], rule: Rule, subject: &str) -> AppResult<Taken> {
        let taken = self.hit_each_then(hits, Some((rule, subject))).await?;
        taken.ok_or_else(|| AppError::internal_msg("a take after admitted hits went missing"))
    }

    async fn hit_each_then(&self, hits: &[(Rule, &str)], take: Option<(Rule, &str)>) -> AppResult<Option<Taken>> {
        // A rule admitting nothing refuses without the KV; the hits before it still count.
        let counted = hits.iter().position(|(rule, _)| rule.limit == 0).unwrap_or(hits.len());
        // The take is sent only behind hits that may all be admitted, and only if its rule
        // admits anything; the store stops at the first refusal, so it counts only after them.
        let sent_take = take.filter(|(rule, _)| counted == hits.len() && rule.limit > 0);
        let keys: Vec<(String, Rule)> =
            hits[..counted].iter().chain(&sent_take).map(|&(rule, subject)| (key(rule, subject), rule)).collect();
        let each: Vec<Hit<'_>> = keys
            .iter()
            .map(|(key, rule)| Hit { key, interval_ms: interval_ms(*rule), window_ms: window_ms(*rule) })
            .collect();
        let now_ms = self.clock.now().timestamp_millis();
        let answers = if each.is_empty() { Vec::new() } else { self.kv.admit_each(&each, now_ms).await? };
        for answer in answers.iter().take(counted) {
            if let Admission::Refused { wait } = answer {
                return Err(AppError::RateLimited { retry_after: retry_after(*wait) });
            }
        }
        if let Some((rule, _)) = hits.get(counted) {
            return Err(AppError::RateLimited { retry_after: rule.window.as_secs().max(1) });
        }
        let Some((rule, _)) = take else { return Ok(None) };
        if sent_take.is_none() {
            return Ok(Some(Taken::Refused { retry_after: rule.window.as_secs().max(1) }));
        }
        let answer =
            answers.get(counted).ok_or_else(|| AppError::internal_msg("the KV answered fewer hits than sent"))?;
        Ok(Some(taken(rule, *answer)))
    }

    /// Counts a hit by `subject` under `rule` and says how many more would fit now: a sliding
    /// count, for callers that act when it fills (a lockout). Of concurrent hits at one
    /// instant, each sees a different `remaining`, so exactly one sees 0.
    pub async fn take(&self, rule: Rule, subject: &str) -> AppResult<Taken> {
        self.hit_each_then_take(&[], rule, subject).await
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

/// A take's answer from the store's: how many more hits fit after an admitted one.
fn taken(rule: Rule, answer: Admission) -> Taken {
    match answer {
        Admission::Admitted { backlog } => {
            let counted = u32::try_from(millis(backlog).div_ceil(interval_ms(rule).unsigned_abs())).unwrap_or(u32::MAX);
            Taken::Admitted { remaining: rule.limit.saturating_sub(counted) }
        }
        Admission::Refused { wait } => Taken::Refused { retry_after: retry_after(wait) },
    }
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

    /// A limiter on a fresh SQLite KV (the directory holds its file).
    async fn limiter() -> (RateLimiter, tempfile::TempDir) {
        let dir = tempfile::TempDir::new().unwrap_or_else(|e| panic!("{e}"));
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("limits.db").display());
        db::migrate(&url).await.unwrap_or_else(|e| panic!("{e:?}"));
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Utc::now()));
        let kv = DatabaseKv::sqlite(&url, Arc::clone(&clock)).unwrap_or_else(|e| panic!("{e:?}"));
        (RateLimiter::new(Arc::new(kv), clock), dir)
    }

    #[tokio::test]
    async fn hits_in_order_count_those_before_a_refusal_and_none_after() {
        let (limiter, _dir) = limiter().await;
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

    #[tokio::test]
    async fn a_take_behind_hits_counts_only_when_every_hit_is_admitted() {
        let (limiter, _dir) = limiter().await;
        // Hits and the take are all by `subject`.
        let take = |hits: Vec<Rule>, subject: &'static str| {
            let limiter = limiter.clone();
            async move {
                let hits: Vec<(Rule, &str)> = hits.into_iter().map(|rule| (rule, subject)).collect();
                limiter.hit_each_then_take(&hits, rule("take", 2), subject).await
            }
        };

        // Behind admitted hits, the take counts and says what is left, down to a refusal.
        assert_eq!(take(vec![rule("hit", 10)], "s").await.ok(), Some(Taken::Admitted { remaining: 1 }));
        assert_eq!(take(vec![rule("hit", 10)], "s").await.ok(), Some(Taken::Admitted { remaining: 0 }));
        assert!(matches!(take(vec![rule("hit", 10)], "s").await, Ok(Taken::Refused { .. })));
        assert_eq!(limiter.counted(rule("hit", 10), "s").await.ok(), Some(3));
        // A refused hit is an error, and the take behind it counts nothing.
        assert!(matches!(take(vec![rule("never", 0)], "t").await, Err(AppError::RateLimited { .. })));
        assert_eq!(limiter.counted(rule("take", 2), "t").await.ok(), Some(0));
        assert_eq!(take(vec![rule("full", 1)], "t").await.ok(), Some(Taken::Admitted { remaining: 1 }));
        assert!(matches!(take(vec![rule("full", 1)], "t").await, Err(AppError::RateLimited { .. })));
        assert_eq!(limiter.counted(rule("take", 2), "t").await.ok(), Some(1));
        // A take under a rule admitting nothing refuses, after the hits before it count.
        let never = limiter.hit_each_then_take(&[(rule("before", 5), "u")], rule("never", 0), "u").await;
        assert!(matches!(never, Ok(Taken::Refused { .. })));
        assert_eq!(limiter.counted(rule("before", 5), "u").await.ok(), Some(1));
    }
}
