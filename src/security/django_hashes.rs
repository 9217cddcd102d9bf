//! Password hashes as Django stores them (`<algorithm>$<fields>`), for accounts imported from a
//! Django project (`idgate import-users`). Each supported format is verified the way Django's
//! hasher verifies it (django/contrib/auth/hashers.py), with well-kept crates for the primitives
//! and a constant-time comparison of the result:
//!
//! - `pbkdf2_sha256$<iterations>$<salt>$<base64>` and `pbkdf2_sha1$...`: PBKDF2-HMAC, output as
//!   long as the digest;
//! - `argon2$argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>` (argon2i and argon2d too, and the
//!   versionless strings of argon2 1.0, which mean version 0x10): a PHC string behind `argon2`;
//! - `bcrypt_sha256$$2b$..`: bcrypt over the hex SHA-256 of the password, and `bcrypt$$2b$..`;
//! - `scrypt$<n>$<salt>$<r>$<p>$<base64>`: scrypt with a 64-byte output.
//!
//! Anything else (`!` unusable passwords, MD5 and SHA-1 hashers, unknown algorithms, malformed
//! strings, costs beyond the bounds below) parses to `None`: such an account is imported without
//! a password. The bounds keep one stored string from tying up the hashing pool or its memory.
//! Django strings never start with `$`, so they cannot be mistaken for idgate's own argon2id
//! PHC strings.

use argon2::{Argon2, PasswordHash, PasswordVerifier as _};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// PBKDF2 iterations accepted: Django has used at least 10,000 since 1.4 and 1,000,000 in 5.2.
const PBKDF2_ITERATIONS: std::ops::RangeInclusive<u32> = 1_000..=20_000_000;
/// Largest argon2 memory cost accepted (1 GiB; Django's default is 100 MiB).
const MAX_ARGON2_MEMORY_KIB: u32 = 1024 * 1024;
/// Largest argon2 time cost accepted (Django's default is 2).
const MAX_ARGON2_ITERATIONS: u32 = 64;
/// Largest bcrypt cost accepted (Django's default is 12; each step doubles the work).
const MAX_BCRYPT_COST: u32 = 18;
/// Largest scrypt memory, 128·n·r bytes, accepted (1 GiB; Django's default uses 16 MiB).
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
/// Largest scrypt parallelism accepted (Django's default is 5; the lanes run one after another).
const MAX_SCRYPT_PARALLELISM: u32 = 64;
/// scrypt output length of Django's hasher.
const SCRYPT_OUTPUT_BYTES: usize = 64;

/// A Django password hash idgate can verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DjangoHash {
    Pbkdf2 {
        digest: Pbkdf2Digest,
        iterations: u32,
        salt: String,
        hash: Vec<u8>,
    },
    /// The PHC string after Django's `argon2` prefix.
    Argon2 {
        phc: String,
    },
    /// The bcrypt string (`$2b$...`); `prehashed` for `bcrypt_sha256`.
    Bcrypt {
        prehashed: bool,
        bcrypt: String,
    },
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: String,
        hash: Vec<u8>,
    },
}

/// The PRF of a Django PBKDF2 hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pbkdf2Digest {
    Sha256,
    Sha1,
}

impl DjangoHash {
    /// Parses a stored Django hash; `None` when it is unusable, unsupported or malformed.
    pub fn parse(encoded: &str) -> Option<Self> {
        let (algorithm, rest) = encoded.split_once('$')?;
        match algorithm {
            "pbkdf2_sha256" => parse_pbkdf2(Pbkdf2Digest::Sha256, rest),
            "pbkdf2_sha1" => parse_pbkdf2(Pbkdf2Digest::Sha1, rest),
            "argon2" => parse_argon2(rest),
            "bcrypt_sha256" => parse_bcrypt(true, rest),
            "bcrypt" => parse_bcrypt(false, rest),
            "scrypt" => parse_scrypt(rest),
            _ => None,
        }
    }

    /// Django's name of the hasher (the string's first field).
    pub fn algorithm(&self) -> &'static str {
        match self {
            Self::Pbkdf2 { digest: Pbkdf2Digest::Sha256, .. } => "pbkdf2_sha256",
            Self::Pbkdf2 { digest: Pbkdf2Digest::Sha1, .. } => "pbkdf2_sha1",
            Self::Argon2 { .. } => "argon2",
            Self::Bcrypt { prehashed: true, .. } => "bcrypt_sha256",
            Self::Bcrypt { prehashed: false, .. } => "bcrypt",
            Self::Scrypt { .. } => "scrypt",
        }
    }

    /// Whether `password` is the one this hash was made from. CPU-heavy: run it on the hashing
    /// pool. The computed and stored outputs are compared in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            Self::Pbkdf2 { digest, iterations, salt, hash } => {
                let mut computed = vec![0u8; hash.len()];
                let derive = match digest {
                    Pbkdf2Digest::Sha256 => pbkdf2::pbkdf2_hmac::<pbkdf2::sha2::Sha256>,
                    Pbkdf2Digest::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>,
                };
                derive(password, salt.as_bytes(), *iterations, &mut computed);
                computed.ct_eq(hash).into()
            }
            Self::Argon2 { phc } => {
                let Ok(mut parsed) = PasswordHash::new(phc) else { return false };
                // argon2 1.0 wrote no version field; the reference library reads that as 0x10.
                parsed.version = parsed.version.or(Some(0x10));
                // Algorithm, version and costs come from the string; the output is compared in
                // constant time by the argon2 crate.
                Argon2::default().verify_password(password, &parsed).is_ok()
            }
            Self::Bcrypt { prehashed, bcrypt } => {
                // Django hashes first so bcrypt's 72-byte limit cannot truncate the password.
                let input =
                    if *prehashed { hex::encode(Sha256::digest(password)).into_bytes() } else { password.to_vec() };
                ::bcrypt::verify(input, bcrypt).unwrap_or(false)
            }
            Self::Scrypt { log_n, r, p, salt, hash } => {
                let Ok(params) = ::scrypt::Params::new(*log_n, *r, *p) else { return false };
                let mut computed = [0u8; SCRYPT_OUTPUT_BYTES];
                if ::scrypt::scrypt(password, salt.as_bytes(), &params, &mut computed).is_err() {
                    return false;
                }
                computed.ct_eq(hash.as_slice()).into()
            }
        }
    }
}

fn parse_pbkdf2(digest: Pbkdf2Digest, rest: &str) -> Option<DjangoHash> {
    let mut fields = rest.splitn(3, '$');
    let iterations: u32 = fields.next()?.parse().ok()?;
    let salt = fields.next()?;
    let hash = STANDARD.decode(fields.next()?).ok()?;
    let length = match digest {
        Pbkdf2Digest::Sha256 => 32,
        Pbkdf2Digest::Sha1 => 20,
    };
    if !PBKDF2_ITERATIONS.contains(&iterations) || salt.is_empty() || hash.len() != length {
        return None;
    }
    Some(DjangoHash::Pbkdf2 { digest, iterations, salt: salt.to_owned(), hash })
}

fn parse_argon2(rest: &str) -> Option<DjangoHash> {
    let phc = format!("${rest}");
    let parsed = PasswordHash::new(&phc).ok()?;
    if !matches!(parsed.algorithm.as_str(), "argon2id" | "argon2i" | "argon2d") || parsed.hash.is_none() {
        return None;
    }
    let params = argon2::Params::try_from(&parsed).ok()?;
    if params.m_cost() > MAX_ARGON2_MEMORY_KIB || params.t_cost() > MAX_ARGON2_ITERATIONS {
        return None;
    }
    if parsed.version.is_some_and(|v| v != 0x10 && v != 0x13) {
        return None;
    }
    Some(DjangoHash::Argon2 { phc })
}

fn parse_bcrypt(prehashed: bool, rest: &str) -> Option<DjangoHash> {
    // `bcrypt$$2b$12$...`: the field after the algorithm is the whole bcrypt string.
    let bcrypt = rest.strip_prefix('$').map(|tail| format!("${tail}"))?;
    let bytes = bcrypt.as_bytes();
    let well_formed =
        bytes.len() == 60 && bcrypt.is_ascii() && matches!(&bcrypt[..4], "$2a$" | "$2b$" | "$2y$") && bytes[6] == b'$';
    let cost: u32 = bcrypt.get(4..6).and_then(|c| c.parse().ok())?;
    if !well_formed || !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return None;
    }
    Some(DjangoHash::Bcrypt { prehashed, bcrypt })
}

fn parse_scrypt(rest: &str) -> Option<DjangoHash> {
    let mut fields = rest.splitn(5, '$');
    let n: u64 = fields.next()?.parse().ok()?;
    let salt = fields.next()?;
    let r: u32 = fields.next()?.parse().ok()?;
    let p: u32 = fields.next()?.parse().ok()?;
    let hash = STANDARD.decode(fields.next()?).ok()?;
    let memory = 128u64.checked_mul(n)?.checked_mul(u64::from(r))?;
    let usable = n >= 2
        && n.is_power_of_two()
        && r >= 1
        && (1..=MAX_SCRYPT_PARALLELISM).contains(&p)
        && memory <= MAX_SCRYPT_MEMORY
        && !salt.is_empty()
        && hash.len() == SCRYPT_OUTPUT_BYTES;
    if !usable {
        return None;
    }
    let log_n = u8::try_from(n.trailing_zeros()).ok()?;
    Some(DjangoHash::Scrypt { log_n, r, p, salt: salt.to_owned(), hash })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made by Django 5.2 (`make_password` and the hashers' `encode`) with low costs; the
    // password of each is PASSWORD.
    const PASSWORD: &str = "correct horse";
    const PBKDF2_SHA256: &str = "pbkdf2_sha256$1000$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=";
    const PBKDF2_SHA1: &str = "pbkdf2_sha1$1000$seasalt$iQvkNOF1wEL4Khh8eogJ8rUhipM=";
    const ARGON2ID: &str =
        "argon2$argon2id$v=19$m=64,t=1,p=2$c2Vhc2FsdHNlYXNhbHQ$eQfQMrPXzyD7W6T+0pHUHuQR6XKc60h+I8EnZCFcW+g";
    /// argon2-cffi with version 0x10, its `v=16` field removed as argon2 1.0 wrote it (Django
    /// verifies this string).
    const ARGON2I_VERSIONLESS: &str =
        "argon2$argon2i$m=64,t=1,p=1$c2Vhc2FsdHNlYXNhbHQ$iDdZ98OfQIGpY9RbLpaoaSWkBPMx3gNsWgyB+FyJkCM";
    const BCRYPT_SHA256: &str = "bcrypt_sha256$$2b$04$XzwqHiysf1eUiL8SXjuDWu1Gd60wy3svoFUzXDNpSeX5vbKEE1QZi";
    const BCRYPT: &str = "bcrypt$$2b$04$Id0wKyUwDmp7ci4/J7.3zOZ7kWJuZPD8UZT5TLN5Gkgfbgu..6e9u";
    const SCRYPT: &str = "scrypt$16$seasalt$8$1$Qxil8nWcIy12YNMYpeV1hXKvwFi5h+x4wHI8WQTJ3/j1NecrriM2mkKB8IaqWjz6RUXfHzR5O5kG1jYWwbPuBA==";

    fn parsed(encoded: &str) -> DjangoHash {
        DjangoHash::parse(encoded).unwrap_or_else(|| panic!("{encoded} should parse"))
    }

    #[test]
    fn every_supported_django_format_verifies_its_password_and_refuses_another() {
        for encoded in [PBKDF2_SHA256, PBKDF2_SHA1, ARGON2ID, ARGON2I_VERSIONLESS, BCRYPT_SHA256, BCRYPT, SCRYPT] {
            let hash = parsed(encoded);
            assert!(hash.verify(PASSWORD.as_bytes()), "{encoded}");
            assert!(!hash.verify(b"correct horsE"), "{encoded}");
            assert!(encoded.starts_with(&format!("{}$", hash.algorithm())), "{encoded}");
        }
    }

    #[test]
    fn unusable_empty_legacy_and_unknown_hashes_do_not_parse() {
        for encoded in [
            "",
            "!nQHUUfB2WVpDtN06ZcNqSi07KTGQZW4f2sLsRW9Y",
            "md5$eFSHaJJMy7AfE9R5k2SBwn$f2f0f6b459e5fd457f19aba26c020839",
            "sha1$salt$2b4f0dfe8fdc6c2f4bd8e4a3a7b1d5fb3d5c4e1a",
            "unsalted_md5$$5f4dcc3b5aa765d61d8327deb882cf99",
            "5f4dcc3b5aa765d61d8327deb882cf99",
            "crypt$$abN/qM.L/H8EQ",
            "$argon2id$v=19$m=19456,t=2,p=1$c2Vhc2FsdHNlYXNhbHQ$eQfQMrPXzyD7W6T+0pHUHuQR6XKc60h+I8EnZCFcW+g",
        ] {
            assert_eq!(DjangoHash::parse(encoded), None, "{encoded}");
        }
    }

    #[test]
    fn malformed_strings_of_supported_formats_do_not_parse() {
        for encoded in [
            "pbkdf2_sha256$many$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=",
            "pbkdf2_sha256$1000$seasalt$not base64",
            "pbkdf2_sha256$1000$seasalt$iQvkNOF1wEL4Khh8eogJ8rUhipM=",
            "pbkdf2_sha256$1000$$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=",
            "argon2$argon2id$v=19$m=64,t=1,p=2$c2Vhc2FsdHNlYXNhbHQ",
            "argon2$scrypt$ln=4,r=8,p=1$c2Vhc2FsdHNlYXNhbHQ$eQfQMrPXzyD7W6T+0pHUHuQR6XKc60h+I8EnZCFcW+g",
            "bcrypt$2b$04$Id0wKyUwDmp7ci4/J7.3zOZ7kWJuZPD8UZT5TLN5Gkgfbgu..6e9u",
            "bcrypt$$2b$04$Id0wKyUwDmp7ci4/J7.3zOZ7kWJuZPD8UZT5TLN5Gkgf",
            "scrypt$15$seasalt$8$1$Qxil8nWcIy12YNMYpeV1hXKvwFi5h+x4wHI8WQTJ3/j1NecrriM2mkKB8IaqWjz6RUXfHzR5O5kG1jYWwbPuBA==",
            "scrypt$16$seasalt$8$1$Qxil8nWcIy12YNMY",
        ] {
            assert_eq!(DjangoHash::parse(encoded), None, "{encoded}");
        }
    }

    #[test]
    fn costs_beyond_the_bounds_do_not_parse() {
        for encoded in [
            "pbkdf2_sha256$999999999$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=",
            "pbkdf2_sha256$999$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=",
            "argon2$argon2id$v=19$m=4194304,t=1,p=2$c2Vhc2FsdHNlYXNhbHQ$eQfQMrPXzyD7W6T+0pHUHuQR6XKc60h+I8EnZCFcW+g",
            "bcrypt$$2b$31$Id0wKyUwDmp7ci4/J7.3zOZ7kWJuZPD8UZT5TLN5Gkgfbgu..6e9u",
            "scrypt$1073741824$seasalt$8$1$Qxil8nWcIy12YNMYpeV1hXKvwFi5h+x4wHI8WQTJ3/j1NecrriM2mkKB8IaqWjz6RUXfHzR5O5kG1jYWwbPuBA==",
        ] {
            assert_eq!(DjangoHash::parse(encoded), None, "{encoded}");
        }
    }

    #[test]
    fn bcrypt_sha256_hashes_the_whole_password_where_plain_bcrypt_stops_at_72_bytes() {
        let long = "x".repeat(80);
        let cut = bcrypt_of(&long[..72]);
        let plain = parsed(&format!("bcrypt${cut}"));
        assert!(plain.verify(long.as_bytes()), "bcrypt reads only the first 72 bytes, as Django's did");
        let prehashed = parsed(&format!("bcrypt_sha256${}", bcrypt_of(&hex::encode(Sha256::digest(long.as_bytes())))));
        assert!(prehashed.verify(long.as_bytes()));
        assert!(!prehashed.verify(&long.as_bytes()[..72]));
    }

    fn bcrypt_of(input: &str) -> String {
        ::bcrypt::hash_with_salt(input, 4, [7; 16])
            .map(|h| h.format_for_version(::bcrypt::Version::TwoB))
            .unwrap_or_default()
    }
}
