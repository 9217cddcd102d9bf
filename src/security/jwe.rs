//! Encrypted access tokens: JWE compact serialization (RFC 7516) with `alg: dir` and
//! `enc: A256GCM` around the signed token (`cty: JWT`, a nested JWT). Only holders of the
//! shared key can read the claims; the signature inside still proves who issued them.
//!
//! AES-256-GCM comes from `ring`, which the TLS stack already builds: no JOSE crate in the
//! registry fits the dependency policy without pulling OpenSSL or a second crypto stack, and for
//! one key-management mode (`dir`) and one content cipher the format is four base64 fields.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};
use serde::Deserialize;

use crate::error::{AppError, AppResult};

/// The protected header of every token we encrypt.
const HEADER: &str = r#"{"alg":"dir","enc":"A256GCM","cty":"JWT"}"#;
const TAG_LEN: usize = 16;

/// Encrypts and decrypts tokens under one 256-bit key.
pub struct TokenCipher {
    key: LessSafeKey,
    random: SystemRandom,
}

#[derive(Deserialize)]
struct ProtectedHeader {
    alg: String,
    enc: String,
    #[serde(default)]
    zip: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

impl TokenCipher {
    /// A cipher from the key's 32 bytes.
    ///
    /// Errors: INTERNAL naming IDGATE_TOKEN_ENCRYPTION_KEY when the key is not 32 bytes.
    pub fn new(key: &[u8]) -> AppResult<Self> {
        let unbound = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| AppError::internal("IDGATE_TOKEN_ENCRYPTION_KEY: must be 32 bytes (256 bits), base64"))?;
        Ok(Self { key: LessSafeKey::new(unbound), random: SystemRandom::new() })
    }

    /// `jws` as a JWE compact serialization, under a fresh random IV.
    pub fn seal(&self, jws: &str) -> AppResult<String> {
        let mut iv = [0u8; NONCE_LEN];
        self.random.fill(&mut iv).map_err(|_| AppError::internal_msg("no randomness for a token IV"))?;
        let header = URL_SAFE_NO_PAD.encode(HEADER);
        let mut sealed = jws.as_bytes().to_vec();
        let tag = self
            .key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(header.as_bytes()), &mut sealed)
            .map_err(|_| AppError::internal_msg("token encryption failed"))?;
        Ok(format!(
            "{header}..{}.{}.{}",
            URL_SAFE_NO_PAD.encode(iv),
            URL_SAFE_NO_PAD.encode(&sealed),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        ))
    }

    /// The signed token inside a JWE of ours.
    ///
    /// Errors: UNAUTHENTICATED for anything else (another shape, header, key or a tampered byte).
    pub fn open(&self, jwe: &str) -> AppResult<String> {
        let refuse = || AppError::Unauthenticated;
        let parts: Vec<&str> = jwe.split('.').collect();
        let [header, encrypted_key, iv, ciphertext, tag] = parts[..] else { return Err(refuse()) };
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| refuse());
        let protected: ProtectedHeader = serde_json::from_slice(&decode(header)?).map_err(|_| refuse())?;
        let ours =
            protected.alg == "dir" && protected.enc == "A256GCM" && protected.zip.is_none() && protected.crit.is_none();
        if !ours || !encrypted_key.is_empty() {
            return Err(refuse());
        }
        let iv: [u8; NONCE_LEN] = decode(iv)?.try_into().map_err(|_| refuse())?;
        let tag = decode(tag)?;
        if tag.len() != TAG_LEN {
            return Err(refuse());
        }
        let mut sealed = decode(ciphertext)?;
        sealed.extend_from_slice(&tag);
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(header.as_bytes()), &mut sealed)
            .map_err(|_| refuse())?;
        String::from_utf8(plain.to_vec()).map_err(|_| refuse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> TokenCipher {
        TokenCipher::new(&[7u8; 32]).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_sealed_token_opens_to_itself_and_nothing_else_opens() {
        let sealed = cipher().seal("a.b.c").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sealed.split('.').count(), 5);
        assert_eq!(sealed.split('.').nth(1), Some(""), "dir: no encrypted key");
        assert_eq!(cipher().open(&sealed).ok().as_deref(), Some("a.b.c"));
        assert_ne!(cipher().seal("a.b.c").ok(), Some(sealed.clone()), "a fresh IV each time");

        let other = TokenCipher::new(&[8u8; 32]).unwrap_or_else(|e| panic!("{e}"));
        assert!(other.open(&sealed).is_err(), "another key");
        let mut parts: Vec<String> = sealed.split('.').map(str::to_owned).collect();
        parts[3] = URL_SAFE_NO_PAD.encode(b"tampered");
        assert!(cipher().open(&parts.join(".")).is_err(), "a changed ciphertext");
        let none_alg = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","enc":"A256GCM"}"#),
            sealed.split_once('.').map(|(_, r)| r).unwrap_or_default()
        );
        assert!(cipher().open(&none_alg).is_err(), "the header is authenticated and must be ours");
        assert!(cipher().open("a.b.c").is_err());
        assert!(TokenCipher::new(&[1u8; 16]).is_err(), "a 128-bit key is refused");
    }
}
