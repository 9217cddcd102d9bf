//! Password hashing with argon2id (OWASP Password Storage Cheat Sheet parameters by default),
//! always on the [`HashPool`]. Verification against a missing hash runs against a dummy hash of
//! the same parameters, so "no such user" costs what "wrong password" costs.
//!
//! A stored hash is idgate's own PHC string (`$argon2id$...`) or, for an account imported from
//! Django, Django's (`pbkdf2_sha256$...`; see [`super::django_hashes`]), told apart by the
//! leading `$`. Both verify on the pool; a login replaces a Django hash that proved the password
//! ([`Passwords::needs_rehash`]).

use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version,
    password_hash::{SaltString, rand_core::OsRng},
};
use secrecy::{ExposeSecret, SecretString};

use super::{django_hashes::DjangoHash, hash_pool::HashPool};
use crate::error::{AppError, AppResult};

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl HashCost {
    /// The argon2id cost as configured.
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self {
            memory_kib: settings.argon2_memory_kib,
            iterations: settings.argon2_iterations,
            parallelism: settings.argon2_parallelism,
        }
    }
}

/// Hashes and verifies passwords on the hashing pool.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    pool: Arc<HashPool>,
    dummy_hash: Arc<str>,
}

impl Passwords {
    /// Prepares the hasher; computes the dummy hash once, on the pool.
    pub async fn new(cost: HashCost, pool: Arc<HashPool>) -> AppResult<Self> {
        let params =
            Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None).map_err(AppError::internal)?;
        let dummy = SecretString::from(super::crypto::random_token());
        let dummy_params = params.clone();
        let dummy_hash = pool.run(move || hash_with(dummy_params, &dummy)).await??;
        Ok(Self { params, pool, dummy_hash: dummy_hash.into() })
    }

    /// A PHC-format argon2id hash of `password` with a fresh salt.
    pub async fn hash(&self, password: SecretString) -> AppResult<String> {
        let params = self.params.clone();
        self.pool.run(move || hash_with(params, &password)).await?
    }

    /// Whether `password` matches `stored` (idgate's argon2id or an imported Django hash); with
    /// no stored hash, burns the same time and fails. A Django hash idgate cannot verify (none
    /// is imported) matches nothing.
    pub async fn verify(&self, password: SecretString, stored: Option<String>) -> AppResult<bool> {
        let params = self.params.clone();
        let (stored, real) = match stored {
            Some(hash) if needs_rehash(&hash) => {
                let Some(django) = DjangoHash::parse(&hash) else {
                    tracing::warn!("a stored password hash has an unknown format; it matches no password");
                    return Ok(false);
                };
                return self.pool.run(move || django.verify(password.expose_secret().as_bytes())).await;
            }
            Some(hash) => (hash, true),
            None => (self.dummy_hash.to_string(), false),
        };
        let matched = self
            .pool
            .run(move || {
                let parsed = PasswordHash::new(&stored).map_err(AppError::internal)?;
                Ok::<_, AppError>(argon2(params).verify_password(password.expose_secret().as_bytes(), &parsed).is_ok())
            })
            .await??;
        Ok(matched && real)
    }

    /// Whether `stored` is not idgate's own hash (an imported Django hash): once it has proved
    /// a password, that password should be hashed again with [`hash`](Self::hash).
    pub fn needs_rehash(stored: &str) -> bool {
        needs_rehash(stored)
    }

    /// Threads hashing in parallel (for the benchmark and the start-up log).
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }
}

/// idgate's PHC strings start with `$`; Django's never do.
fn needs_rehash(stored: &str) -> bool {
    !stored.starts_with('$')
}

fn argon2(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_with(params: Params, password: &SecretString) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2(params)
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(AppError::internal)
}
