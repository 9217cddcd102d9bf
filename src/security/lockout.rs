//! Account lockout against password guessing (OWASP Authentication Cheat Sheet, "Account
//! Lockout"): after `threshold` failed attempts on one identifier within `window`, the account
//! locks for `duration`, doubling for each further lock less than a day after the previous one, up to
//! `max_duration`.
//!
//! Failures are a sliding count in the KV (the rate limiter's GCRA, one failure forgotten every
//! `window / threshold`), so every instance shares it, a restart keeps it, and failures that
//! straddle a clock boundary count together. A login
//! reserves its attempt before the password is verified: of any number of parallel wrong
//! passwords, at most `threshold` reach the (costly) verification and exactly one, the one
//! that fills the count, locks. Unknown identifiers are counted exactly like real ones, so the
//! count says nothing about whether an account exists; only a real account can be locked.
//!
//! The lock itself (`locked_until`) is stored on the user row by the caller. Lockout trades a
//! denial-of-service risk (anyone can lock an owner out for a while) for brute-force
//! protection; the owner's way back is the reset link mailed at the lock, and an admin's
//! `unlockUser`.

use std::{sync::Arc, time::Duration};

use super::{
    crypto::sha256_hex,
    rate_limit::{RateLimiter, Rule, Taken, forgetting},
};
use crate::{
    clock::Clock,
    config::Settings,
    domain::UserId,
    error::AppResult,
    kv::{Kv, Write},
};

/// The cost cap on password checks per address: far above the lock threshold, it bounds what
/// guessing costs the server, never an owner who has the reset link (a reset clears it).
pub const LOGIN_PER_EMAIL: &str = "login-email";
const LOCK_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// The configured lockout.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Failures that lock; 0 turns lockout off.
    pub threshold: u32,
    pub window: Duration,
    pub duration: Duration,
    pub max_duration: Duration,
    /// The cost cap's limit per hour ([`LOGIN_PER_EMAIL`]).
    pub login_per_email: u32,
}

impl LockoutPolicy {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            threshold: settings.lockout_threshold,
            window: Duration::from_secs(settings.lockout_window_secs),
            duration: Duration::from_secs(settings.lockout_duration_secs),
            max_duration: Duration::from_secs(settings.lockout_max_duration_secs.max(settings.lockout_duration_secs)),
            login_per_email: settings.login_rate_per_email,
        }
    }
}

/// What a reserved attempt may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Verify the password. `last`: this attempt filled the count, so if the password is wrong
    /// the caller locks the account (exactly one attempt gets it).
    Verify { last: bool },
    /// The count is full (a lock is being set by a parallel attempt): answer as for a wrong
    /// password without verifying.
    Exhausted,
}

/// Counts failures and sizes locks.
#[derive(Clone)]
pub struct Lockout {
    kv: Arc<dyn Kv>,
    clock: Arc<dyn Clock>,
    limiter: RateLimiter,
    policy: LockoutPolicy,
}

impl Lockout {
    pub fn new(kv: Arc<dyn Kv>, clock: Arc<dyn Clock>, limiter: RateLimiter, policy: LockoutPolicy) -> Self {
        Self { kv, clock, limiter, policy }
    }

    fn failures(&self) -> Rule {
        Rule { name: "lock-failures", limit: self.policy.threshold, window: self.policy.window }
    }

    fn cost_cap(&self) -> Rule {
        Rule { name: LOGIN_PER_EMAIL, limit: self.policy.login_per_email, window: Duration::from_secs(3600) }
    }

    /// Counts a password check on `identifier`: the caller's `limits` in order, then the
    /// per-address cost cap, then, when `reserve`, an attempt reserved in the failure count
    /// before the password is verified. One KV round trip, which stops at the first refusal:
    /// nothing after it counts. None when nothing was reserved.
    ///
    /// Errors: RATE_LIMITED when one of `limits` or the cost cap refuses.
    pub async fn count_check(
        &self,
        limits: &[(Rule, &str)],
        identifier: &str,
        reserve: bool,
    ) -> AppResult<Option<Attempt>> {
        let subject = subject(identifier);
        let mut hits = limits.to_vec();
        hits.push((self.cost_cap(), &subject));
        if !reserve || self.policy.threshold == 0 {
            self.limiter.hit_each(&hits).await?;
            return Ok(reserve.then_some(Attempt::Verify { last: false }));
        }
        Ok(Some(match self.limiter.hit_each_then_take(&hits, self.failures(), &subject).await? {
            Taken::Admitted { remaining } => Attempt::Verify { last: remaining == 0 },
            Taken::Refused { .. } => Attempt::Exhausted,
        }))
    }

    /// Counts a failure that had no reservation (a wrong login code); true when it filled the
    /// count, so the caller locks.
    pub async fn failed(&self, identifier: &str) -> AppResult<bool> {
        if self.policy.threshold == 0 {
            return Ok(false);
        }
        let taken = self.limiter.take(self.failures(), &subject(identifier)).await?;
        Ok(taken == Taken::Admitted { remaining: 0 })
    }

    /// How long the lock starting now lasts: the base duration, doubled for each earlier lock
    /// of `user` less than a day before, at most the cap. Counts this lock. (Only the attempt
    /// that fills the failure count calls this, so there is no race to guard.)
    pub async fn next_lock(&self, user: UserId) -> AppResult<Duration> {
        let key = format!("locks:{}", user.0.simple());
        let now = self.clock.now().timestamp();
        // "<count>@<unix seconds until which the count holds>"
        let earlier = self.kv.get(&key).await?.and_then(|value| {
            let (count, until) = value.split_once('@')?;
            (until.parse::<i64>().ok()? > now).then(|| count.parse::<u64>().ok()).flatten()
        });
        let locks = earlier.unwrap_or(0) + 1;
        let remember = i64::try_from(LOCK_MEMORY.as_secs()).unwrap_or(i64::MAX);
        self.kv.set(&key, &format!("{locks}@{}", now.saturating_add(remember)), LOCK_MEMORY).await?;
        let doublings = u32::try_from(locks.saturating_sub(1)).unwrap_or(u32::MAX).min(20);
        Ok(self.policy.duration.saturating_mul(1 << doublings).min(self.policy.max_duration))
    }

    /// Forgets `identifier`'s failures and its cost-cap count: after a success, a reset or an
    /// admin's unlock.
    pub async fn clear(&self, identifier: &str) -> AppResult<()> {
        self.kv.write(&self.clearing(identifier)).await
    }

    /// The writes of [`Lockout::clear`], for a caller that stores them with its own.
    pub fn clearing(&self, identifier: &str) -> Vec<Write> {
        let subject = subject(identifier);
        forgetting(&[(self.failures(), &subject), (self.cost_cap(), &subject)])
    }
}

/// The key part naming an identifier: hashed, so keys show no address.
fn subject(identifier: &str) -> String {
    sha256_hex(identifier.to_lowercase().as_bytes())
}
