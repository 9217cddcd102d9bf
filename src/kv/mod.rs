//! Ephemeral state with time-to-live: pending one-time codes and link tokens, their attempt
//! counters, rate-limit windows, refresh-token grace copies. One trait, two stores: Redis,
//! shared by every instance, and a table in the application's database when no Redis is
//! configured. Both outlive the process, so a restart or a crash loses no code a user was sent
//! and resets no brute-force counter. (No store keeps this state in process memory only.)
//! Whether a session is revoked is not here: the database is the truth for that.
//!
//! TTLs here are garbage collection. Anything whose expiry a user can observe (a code's
//! lifetime, a cooldown) also carries its own deadline, checked against the injected clock.

mod database;
mod redis;

use std::time::Duration;

use async_trait::async_trait;

pub use self::{database::DatabaseKv, redis::RedisKv};
use crate::error::AppResult;

/// The outcome of one hit against a sliding limit ([`Kv::admit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Admitted. `backlog`: how far the new TAT lies ahead of now, i.e. the hits still counted
    /// (`backlog / interval`, rounded up), this one included.
    Admitted { backlog: Duration },
    /// Refused; a hit would be admitted after `wait`.
    Refused { wait: Duration },
}

/// One hit of [`Kv::admit_each`]: a limit's key and its GCRA terms, as [`Kv::admit`] takes them.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    pub key: &'a str,
    pub interval_ms: i64,
    pub window_ms: i64,
}

/// One write of a batch ([`Kv::write`]). Not `Debug`: a value may be a code's record or a
/// pending challenge, which stay out of logs.
pub enum Write {
    /// Stores `value` at `key` for `ttl`, replacing any value.
    Set { key: String, value: String, ttl: Duration },
    /// Removes `key` if present.
    Delete { key: String },
}

/// A key-value store whose every write carries a TTL. All operations are atomic per key.
#[async_trait]
pub trait Kv: Send + Sync + 'static {
    /// The value at `key`, if present and unexpired.
    async fn get(&self, key: &str) -> AppResult<Option<String>>;
    /// Stores `value` at `key` for `ttl`, replacing any value.
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> AppResult<()>;
    /// Stores `value` only if `key` is absent; true when this call stored it.
    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> AppResult<bool>;
    /// Removes and returns the value: of concurrent takers, exactly one gets it.
    async fn take(&self, key: &str) -> AppResult<Option<String>>;
    /// Removes each of `keys` that is present, in one round trip.
    async fn delete(&self, keys: &[&str]) -> AppResult<()>;
    /// Applies `writes` in order as one unit, in one round trip: a reader sees all of them or
    /// none. (A login stores its challenge and code and forgets its failures this way: each
    /// round trip is a hand-off that the hashing threads pay for.)
    async fn write(&self, writes: &[Write]) -> AppResult<()>;
    /// Adds one to the counter at `key` (created at 0 with `ttl`) and returns the new count.
    async fn increment(&self, key: &str, ttl: Duration) -> AppResult<u64>;
    /// One hit against a sliding limit (GCRA, the generic cell rate algorithm): `key` holds a
    /// theoretical arrival time (TAT, Unix milliseconds, as its plain value). A hit at `now_ms`
    /// is admitted when `max(TAT, now) + interval_ms` lies at most `window_ms` ahead of `now`,
    /// and then becomes the new TAT; otherwise nothing changes. So `window / interval` hits fit
    /// at once and one more every `interval`, with no double burst at any edge. Atomic per key.
    async fn admit(&self, key: &str, now_ms: i64, interval_ms: i64, window_ms: i64) -> AppResult<Admission>;
    /// [`admit`](Kv::admit) for each of `hits` in order at `now_ms`, stopping at the first that
    /// refuses: the answers, a refusal last, and no hit after it counted. The same as calling
    /// `admit` one after another, in one round trip where the store can (Redis runs them in
    /// one script, SQLite in one transaction on the calling thread). A login counts its
    /// per-address and per-account limits this way.
    async fn admit_each(&self, hits: &[Hit<'_>], now_ms: i64) -> AppResult<Vec<Admission>> {
        admit_in_turn(self, hits, now_ms).await
    }
    /// Fails when the store cannot be reached (for /readyz).
    async fn ping(&self) -> AppResult<()>;
}

/// [`Kv::admit_each`] as one [`Kv::admit`] after another, for a store that has no single round
/// trip for them.
async fn admit_in_turn(kv: &(impl Kv + ?Sized), hits: &[Hit<'_>], now_ms: i64) -> AppResult<Vec<Admission>> {
    let mut answers = Vec::with_capacity(hits.len());
    for hit in hits {
        let answer = kv.admit(hit.key, now_ms, hit.interval_ms, hit.window_ms).await?;
        answers.push(answer);
        if matches!(answer, Admission::Refused { .. }) {
            break;
        }
    }
    Ok(answers)
}
