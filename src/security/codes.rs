//! One-time codes: six digits from the OS CSPRNG, stored only as an HMAC keyed by the server
//! secret and bound to their scope (purpose and challenge), compared in constant time. A leaked
//! KV therefore reveals no code, and a code for one challenge never matches another.

use hmac::{Hmac, Mac};
use rand::{Rng, rngs::OsRng};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::crypto::constant_time_eq;

/// Digits in a code.
pub const CODE_DIGITS: usize = 6;

/// A fresh uniformly random code, zero-padded.
pub fn generate_code() -> SecretString {
    let n: u32 = OsRng.gen_range(0..1_000_000);
    SecretString::from(format!("{n:06}"))
}

/// Keyed digests of codes and single-use tokens.
#[derive(Clone)]
pub struct CodeHasher {
    key: SecretString,
}

impl CodeHasher {
    pub fn new(key: SecretString) -> Self {
        Self { key }
    }

    /// Hex HMAC-SHA256 of `code` within `scope`.
    pub fn digest(&self, scope: &str, code: &str) -> String {
        hex::encode(self.mac(scope, code))
    }

    /// Whether `code` within `scope` has the digest `expected`, in constant time.
    pub fn matches(&self, scope: &str, code: &str, expected: &str) -> bool {
        constant_time_eq(hex::encode(self.mac(scope, code)).as_bytes(), expected.as_bytes())
    }

    fn mac(&self, scope: &str, code: &str) -> Vec<u8> {
        // HMAC accepts keys of any length, so new_from_slice cannot fail; fall back to an
        // empty tag (which matches nothing) rather than panic.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.key.expose_secret().as_bytes()) else {
            return Vec::new();
        };
        mac.update(scope.as_bytes());
        mac.update(&[0]);
        mac.update(code.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// Whether `input` looks like a code at all (checked before any lookup).
pub fn is_well_formed(input: &str) -> bool {
    input.len() == CODE_DIGITS && input.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> CodeHasher {
        CodeHasher::new(SecretString::from("k".repeat(32)))
    }

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..100 {
            assert!(is_well_formed(generate_code().expose_secret()));
        }
    }

    #[test]
    fn a_code_matches_only_in_its_own_scope() {
        let digest = hasher().digest("login:a", "123456");
        assert!(hasher().matches("login:a", "123456", &digest));
        assert!(!hasher().matches("login:b", "123456", &digest));
        assert!(!hasher().matches("login:a", "123457", &digest));
    }

    #[test]
    fn malformed_codes_are_recognised() {
        assert!(!is_well_formed("12345"));
        assert!(!is_well_formed("12345a"));
        assert!(!is_well_formed("１２３４５６"));
    }
}
