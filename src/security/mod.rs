//! Security primitives shared by the features: password hashing on a low-priority pool (and
//! verification of password hashes imported from Django), the password policy, one-time codes,
//! rate limits and small crypto helpers. Nothing here knows about GraphQL or the database.

pub mod captcha;
pub mod codes;
pub mod cookies;
pub mod crypto;
pub mod django_hashes;
pub mod hash_memory;
pub mod hash_pool;
pub mod jwe;
pub mod lockout;
pub mod one_time;
pub mod password_policy;
pub mod passwords;
pub mod rate_limit;
pub mod send_limits;
