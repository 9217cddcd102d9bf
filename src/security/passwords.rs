//! Password hashing with argon2id (OWASP Password Storage Cheat Sheet parameters by default),
//! always on the [`HashPool`]. Verification against a missing hash runs against a dummy hash of
//! the same parameters, so "no such user" costs what "wrong password" costs.
//!
//! A stored hash is idgate's own PHC string (`$argon2id$...`) or, for an account imported from
//! Django, Django's (`pbkdf2_sha256$...`; see [`super::django_hashes`]), told apart by the
//! leading `$`. Both verify on the pool; a login replaces a Django hash that proved the password
//! ([`Passwords::needs_rehash`]).
//!
//! argon2id's working memory is borrowed from [`super::hash_memory`], which keeps it between
//! hashes and gives it back to the kernel once logins stop.

use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, Version,
    password_hash::{Output, ParamsString, SaltString, rand_core::OsRng},
};
use secrecy::{ExposeSecret, SecretString};

use super::{
    django_hashes::DjangoHash,
    hash_memory::{self, Ticket},
    hash_pool::HashPool,
};
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
    /// Prepares the hasher and the dummy hash: a random salt and output under the configured
    /// cost. Verifying against it costs one full hash, like a real one, and matches nothing.
    pub fn new(cost: HashCost, pool: Arc<HashPool>) -> AppResult<Self> {
        let params =
            Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None).map_err(AppError::internal)?;
        let salt = SaltString::generate(&mut OsRng);
        let output = Output::new(&rand::random::<[u8; Params::DEFAULT_OUTPUT_LEN]>()).map_err(AppError::internal)?;
        let dummy_hash = phc(&params, &salt, output)?;
        Ok(Self { params, pool, dummy_hash: dummy_hash.into() })
    }

    /// A PHC-format argon2id hash of `password` with a fresh salt.
    pub async fn hash(&self, password: SecretString) -> AppResult<String> {
        let (params, memory) = (self.params.clone(), hash_memory::SHARED.ticket());
        self.pool.run(move || hash_with(params, &password, &memory)).await?
    }

    /// Whether `password` matches `stored` (idgate's argon2id or an imported Django hash); with
    /// no stored hash, burns the same time and fails. A Django hash idgate cannot verify (none
    /// is imported) matches nothing.
    pub async fn verify(&self, password: SecretString, stored: Option<String>) -> AppResult<bool> {
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
        let memory = hash_memory::SHARED.ticket();
        let matched = self.pool.run(move || verify_with(&stored, &password, &memory)).await??;
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

/// argon2id of `password` under `params` and `salt` into `out`, in `memory`'s borrowed blocks.
fn argon2id_into(memory: &Ticket, params: Params, password: &[u8], salt: &[u8], out: &mut [u8]) -> AppResult<()> {
    let count = params.block_count();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    memory
        .with_blocks(count, |blocks| argon2.hash_password_into_with_memory(password, salt, out, blocks))
        .map_err(AppError::internal)
}

/// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), the format idgate stores.
fn phc(params: &Params, salt: &SaltString, output: Output) -> AppResult<String> {
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(AppError::internal)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

fn hash_with(params: Params, password: &SecretString, memory: &Ticket) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(AppError::internal)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2id_into(memory, params.clone(), password.expose_secret().as_bytes(), salt_bytes, &mut out)?;
    phc(&params, &salt, Output::new(&out).map_err(AppError::internal)?)
}

/// Whether `password` hashes to the stored argon2id PHC string, under that string's own
/// parameters (hashes made under an earlier cost keep verifying). The outputs are compared in
/// constant time (`Output`'s equality).
fn verify_with(stored: &str, password: &SecretString, memory: &Ticket) -> AppResult<bool> {
    let parsed = PasswordHash::new(stored).map_err(AppError::internal)?;
    if Algorithm::try_from(parsed.algorithm).map_err(AppError::internal)? != Algorithm::Argon2id
        || parsed.version.is_some_and(|v| v != u32::from(Version::V0x13))
    {
        return Err(AppError::internal_msg("a stored hash is not argon2id v19"));
    }
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(AppError::internal_msg("a stored hash has no salt or output"));
    };
    let params = Params::try_from(&parsed).map_err(AppError::internal)?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(AppError::internal)?;
    let mut out = vec![0u8; expected.len()];
    argon2id_into(memory, params, password.expose_secret().as_bytes(), salt_bytes, &mut out)?;
    Ok(Output::new(&out).map_err(AppError::internal)? == expected)
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;
    use crate::security::hash_memory::SHARED;

    fn cheap(memory_kib: u32) -> Params {
        Params::new(memory_kib, 1, 1, None).unwrap_or_else(|e| panic!("params: {e}"))
    }

    fn secret(password: &str) -> SecretString {
        SecretString::from(password.to_owned())
    }

    fn verify(stored: &str, password: &str) -> AppResult<bool> {
        verify_with(stored, &secret(password), &SHARED.ticket())
    }

    #[test]
    fn hashes_stored_by_the_argon2_crate_verify_in_reused_memory() {
        let salt = SaltString::generate(&mut OsRng);
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, cheap(64));
        let stored = argon2.hash_password(b"right password", &salt).unwrap_or_else(|e| panic!("hash: {e}")).to_string();
        assert!(matches!(verify(&stored, "right password"), Ok(true)));
        assert!(matches!(verify(&stored, "wrong password"), Ok(false)));
    }

    #[test]
    fn our_hashes_are_standard_phc_strings_under_their_own_parameters() {
        // A large hash, then a smaller one on the same thread: each reads only its own blocks.
        for memory_kib in [256, 32] {
            let stored = hash_with(cheap(memory_kib), &secret("pass phrase"), &SHARED.ticket())
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(stored.starts_with(&format!("$argon2id$v=19$m={memory_kib},t=1,p=1$")), "{stored}");
            let parsed = PasswordHash::new(&stored).unwrap_or_else(|e| panic!("{e}"));
            assert!(Argon2::default().verify_password(b"pass phrase", &parsed).is_ok());
            assert!(matches!(verify(&stored, "pass phrase"), Ok(true)));
            assert!(matches!(verify(&stored, "pass phrasE"), Ok(false)));
        }
    }

    #[test]
    fn a_hash_of_another_argon2_variant_is_refused_not_matched() {
        let salt = SaltString::generate(&mut OsRng);
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, cheap(64));
        let stored = argon2i.hash_password(b"pw", &salt).unwrap_or_else(|e| panic!("hash: {e}")).to_string();
        assert!(verify(&stored, "pw").is_err());
    }
}
