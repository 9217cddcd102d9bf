//! Server keys: the access-token signing keys and the secret keying code hashes. Configured
//! ones win; otherwise each is generated at first start and stored in the database, where the
//! first instance to store it wins and every other instance (and restart) reads the same one.
//!
//! Stored signing keys rotate (`idgate keys rotate`): a new key is published at once and signs
//! after the publish delay (the reload interval), so every instance and every verifier's
//! cached JWKS knows it before the first token it signs; the old one stays published until its
//! last token expires, or until an operator retires it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, jwk::Jwk};
use ring::rand::SystemRandom;
use rsa::{RsaPrivateKey, pkcs8::EncodePrivateKey, pkcs8::LineEnding};
use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::{
    repo::{self, StoredKey},
    tokens::LEEWAY_SECS,
};
use crate::{
    clock::Clock,
    config::{JwtAlgorithm, Settings},
    error::{AppError, AppResult},
    security::crypto::{random_token, sha256_hex},
};

const SIGNING_PURPOSE: &str = "access-token-signing";
const CODE_SECRET_PURPOSE: &str = "code-hmac";

/// The key that signs access tokens, with its public half.
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    signer: Signer,
    pub decoding: DecodingKey,
    /// The public key as published at /.well-known/jwks.json.
    pub public_jwk: Jwk,
}

/// How a key signs.
enum Signer {
    /// An RSA key that `ring` takes (2048 to 4096 bits, a public exponent of at least 65537: the
    /// generated keys, and what `openssl genpkey` makes by default), parsed once. jsonwebtoken's
    /// RustCrypto backend parses the key again for every token and takes over three times as
    /// long (the release bench: 1.9 ms a signature against 0.57), on the request's thread:
    /// every `verifyOtp`, refresh and social sign-in pays it.
    Rsa(Box<ring::rsa::KeyPair>),
    /// Any other key, through jsonwebtoken.
    Jwt(EncodingKey),
}

impl SigningKey {
    /// Builds the key from a PKCS#8 PEM; `kid` defaults to a digest of the public key.
    pub fn from_pem(algorithm: JwtAlgorithm, pem: &str, kid: Option<String>) -> AppResult<Self> {
        super::jwt_crypto::install();
        let bad = |e: jsonwebtoken::errors::Error| AppError::internal(format!("IDGATE_JWT_PRIVATE_KEY: {e}"));
        let (algorithm, encoding) = match algorithm {
            JwtAlgorithm::RS256 => (Algorithm::RS256, EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(bad)?),
            JwtAlgorithm::ES256 => (Algorithm::ES256, EncodingKey::from_ec_pem(pem.as_bytes()).map_err(bad)?),
            JwtAlgorithm::EdDSA => (Algorithm::EdDSA, EncodingKey::from_ed_pem(pem.as_bytes()).map_err(bad)?),
        };
        let mut public_jwk = Jwk::from_encoding_key(&encoding, algorithm).map_err(bad)?;
        let decoding = DecodingKey::from_jwk(&public_jwk).map_err(bad)?;
        let kid = match kid {
            Some(kid) => kid,
            None => {
                let public = serde_json::to_string(&public_jwk.algorithm).map_err(AppError::internal)?;
                sha256_hex(public.as_bytes())[..16].to_owned()
            }
        };
        public_jwk.common.key_id = Some(kid.clone());
        public_jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        // jsonwebtoken holds an RSA key as PKCS#1 DER, whichever PEM it came from.
        let signer = match algorithm {
            Algorithm::RS256 => ring::rsa::KeyPair::from_der(encoding.as_bytes())
                .map_or(Signer::Jwt(encoding), |key| Signer::Rsa(Box::new(key))),
            _ => Signer::Jwt(encoding),
        };
        Ok(Self { kid, algorithm, signer, decoding, public_jwk })
    }

    /// `header` and `claims` as a signed JWT (JWS compact serialization). `header.alg` must be
    /// this key's algorithm.
    pub fn sign(&self, header: &Header, claims: &impl Serialize) -> AppResult<String> {
        let key = match &self.signer {
            Signer::Jwt(encoding) => return jsonwebtoken::encode(header, claims, encoding).map_err(AppError::internal),
            Signer::Rsa(key) => key,
        };
        if header.alg != Algorithm::RS256 {
            return Err(AppError::internal_msg("a token header names another algorithm than its key's"));
        }
        let signed = format!("{}.{}", json_part(header)?, json_part(claims)?);
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(&ring::signature::RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut signature)
            .map_err(|_| AppError::internal_msg("RS256 signing failed"))?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// `value`'s JSON in base64url without padding: a part of a JWS.
fn json_part(value: &impl Serialize) -> AppResult<String> {
    Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).map_err(AppError::internal)?))
}

/// A fresh 2048-bit RSA key as PKCS#8 PEM (RS256 is what every JWT library verifies).
pub fn generate_rsa_pem() -> AppResult<SecretString> {
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(AppError::internal)?;
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(AppError::internal)?;
    Ok(SecretString::from(pem.as_str().to_owned()))
}

/// How long rotation takes: a new key is published this long before it signs (every instance
/// reloads keys, and every verifier's cached JWKS expires, within it), and an old key stays
/// published until the tokens it signed have expired.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    pub publish_delay: Duration,
    pub token_ttl: Duration,
}

impl Rotation {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            publish_delay: Duration::from_secs(settings.key_refresh_secs),
            token_ttl: Duration::from_secs(settings.access_token_ttl_secs),
        }
    }
}

/// Where a stored signing key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published; signs from `signs_from` on.
    Pending { signs_from: DateTime<Utc> },
    /// Signs new tokens.
    Signing,
    /// No longer signs; published (its tokens verify) until `until`.
    Verifying { until: DateTime<Utc> },
    /// Every token it signed has expired: no longer published.
    Expired,
    /// Retired by an operator: no longer published, its tokens refused.
    Retired,
}

/// The state of each stored signing key at `now`, oldest first.
pub fn key_states(keys: &[StoredKey], now: DateTime<Utc>, rotation: Rotation) -> Vec<(StoredKey, KeyState)> {
    let delay = chrono_duration(rotation.publish_delay);
    let ttl = chrono_duration(rotation.token_ttl) + chrono::Duration::seconds(LEEWAY_SECS);
    let live: Vec<&StoredKey> = keys.iter().filter(|k| k.retired_at.is_none()).collect();
    // The newest live key published long enough signs; with none such, the oldest live one.
    let signer = live.iter().rposition(|k| k.created_at + delay <= now).unwrap_or(0);
    keys.iter()
        .map(|key| {
            let state = match live.iter().position(|k| k.id == key.id) {
                None => KeyState::Retired,
                Some(i) if i == signer => KeyState::Signing,
                Some(i) if i > signer => KeyState::Pending { signs_from: key.created_at + delay },
                Some(i) => {
                    // It signed until the next live key took over.
                    let until = live.get(i + 1).map_or(now, |next| next.created_at + delay) + ttl;
                    if until > now { KeyState::Verifying { until } } else { KeyState::Expired }
                }
            };
            (key.clone(), state)
        })
        .collect()
}

/// The signing keys in force: configured ones (fixed), or the stored ones (reloaded).
pub struct KeyStore {
    db: DatabaseConnection,
    rotation: Rotation,
    configured: Option<KeyRing>,
    /// Parsed stored keys by kid, so a reload parses only new ones.
    parsed: Mutex<HashMap<String, Arc<SigningKey>>>,
}

impl KeyStore {
    /// The configured keys (IDGATE_JWT_PRIVATE_KEY: one or more PEM blocks, the first signs),
    /// or the stored ones, generating the first at first start.
    pub async fn open(db: &DatabaseConnection, settings: &Settings, clock: &dyn Clock) -> AppResult<Self> {
        let rotation = Rotation::from_settings(settings);
        let configured = match &settings.jwt_private_key {
            Some(pems) => Some(configured_ring(settings.jwt_algorithm, pems, settings.jwt_key_id.clone())?),
            None => None,
        };
        let store = Self { db: db.clone(), rotation, configured, parsed: Mutex::new(HashMap::new()) };
        if store.configured.is_none() {
            if settings.jwt_algorithm != JwtAlgorithm::RS256 {
                return Err(AppError::internal(
                    "IDGATE_JWT_ALGORITHM other than RS256 needs IDGATE_JWT_PRIVATE_KEY (only RS256 keys are generated)",
                ));
            }
            if repo::find_server_key(db, SIGNING_PURPOSE).await?.is_none() {
                let (kid, pem) = new_rsa_key().await?;
                repo::store_server_key_once(db, &kid, SIGNING_PURPOSE, "RS256", pem.expose_secret(), clock.now())
                    .await?;
            }
        }
        Ok(store)
    }

    /// Whether keys come from the database (and so can rotate while serving).
    pub fn is_stored(&self) -> bool {
        self.configured.is_none()
    }

    /// The keys in force at `now`.
    pub async fn ring(&self, now: DateTime<Utc>) -> AppResult<KeyRing> {
        if let Some(ring) = &self.configured {
            return Ok(ring.clone());
        }
        let stored = repo::server_keys(&self.db, SIGNING_PURPOSE).await?;
        let mut parsed = self.parsed.lock().unwrap_or_else(PoisonError::into_inner);
        let mut signer = None;
        let mut verifiers = Vec::new();
        for (key, state) in key_states(&stored, now, self.rotation) {
            if matches!(state, KeyState::Expired | KeyState::Retired) {
                continue;
            }
            let ready = match parsed.get(&key.id) {
                Some(ready) => Arc::clone(ready),
                None => {
                    let ready =
                        Arc::new(SigningKey::from_pem(JwtAlgorithm::RS256, &key.material, Some(key.id.clone()))?);
                    parsed.insert(key.id.clone(), Arc::clone(&ready));
                    ready
                }
            };
            if state == KeyState::Signing {
                signer = Some(Arc::clone(&ready));
            }
            verifiers.push(ready);
        }
        let signer = signer.ok_or_else(|| AppError::internal_msg("no signing key is in force"))?;
        Ok(KeyRing { signer, verifiers })
    }

    /// Every stored signing key with its state (for `idgate keys list`).
    pub async fn list(&self, now: DateTime<Utc>) -> AppResult<Vec<(StoredKey, KeyState)>> {
        Ok(key_states(&repo::server_keys(&self.db, SIGNING_PURPOSE).await?, now, self.rotation))
    }

    /// Stores a new signing key; it is published at once and signs after the publish delay.
    ///
    /// Errors: CONFLICT (`key`) when keys come from configuration or a concurrent rotation won.
    pub async fn rotate(&self, now: DateTime<Utc>) -> AppResult<StoredKey> {
        if self.configured.is_some() {
            return Err(AppError::WrongState("keys come from IDGATE_JWT_PRIVATE_KEY: rotate them there"));
        }
        let (kid, pem) = new_rsa_key().await?;
        repo::store_next_key(&self.db, &kid, SIGNING_PURPOSE, "RS256", pem.expose_secret(), now).await
    }

    /// Retires a key: it is unpublished and its tokens refused (within the reload interval).
    ///
    /// Errors: NOT_FOUND, CONFLICT for the key that signs now (rotate first).
    pub async fn retire(&self, kid: &str, now: DateTime<Utc>) -> AppResult<()> {
        let states = self.list(now).await?;
        match states.iter().find(|(key, _)| key.id == kid) {
            None => return Err(AppError::NotFound("key")),
            Some((_, KeyState::Signing)) => {
                return Err(AppError::WrongState(
                    "this key signs now: rotate, wait until the new key signs, then retire",
                ));
            }
            Some(_) => {}
        }
        repo::retire_key(&self.db, kid, now).await?;
        Ok(())
    }
}

/// The keys that verify, and the one that signs (also among them).
#[derive(Clone)]
pub struct KeyRing {
    pub signer: Arc<SigningKey>,
    pub verifiers: Vec<Arc<SigningKey>>,
}

impl KeyRing {
    /// One key that signs and verifies.
    pub fn single(key: SigningKey) -> Self {
        let key = Arc::new(key);
        Self { signer: Arc::clone(&key), verifiers: vec![key] }
    }
}

/// Keys from configuration: one or more PKCS#8 PEM blocks; the first signs, all verify.
fn configured_ring(algorithm: JwtAlgorithm, pems: &SecretString, first_kid: Option<String>) -> AppResult<KeyRing> {
    let text = pems.expose_secret();
    let blocks: Vec<String> =
        text.split("-----BEGIN ").skip(1).map(|block| format!("-----BEGIN {}", block.trim_end())).collect();
    if blocks.is_empty() {
        return Err(AppError::internal("IDGATE_JWT_PRIVATE_KEY: no PEM block found"));
    }
    let mut verifiers = Vec::new();
    for (i, pem) in blocks.iter().enumerate() {
        let kid = if i == 0 { first_kid.clone() } else { None };
        verifiers.push(Arc::new(SigningKey::from_pem(algorithm, pem, kid)?));
    }
    let signer = Arc::clone(&verifiers[0]);
    Ok(KeyRing { signer, verifiers })
}

async fn new_rsa_key() -> AppResult<(String, SecretString)> {
    let pem = tokio::task::spawn_blocking(generate_rsa_pem).await.map_err(AppError::internal)??;
    let kid = sha256_hex(pem.expose_secret().as_bytes())[..16].to_owned();
    Ok((kid, pem))
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// The secret keying code digests, from settings or stored (generated at first start).
pub async fn load_code_secret(
    db: &DatabaseConnection,
    settings: &Settings,
    clock: &dyn Clock,
) -> AppResult<SecretString> {
    if let Some(secret) = &settings.secret_key {
        return Ok(secret.clone());
    }
    let stored = match repo::find_server_key(db, CODE_SECRET_PURPOSE).await? {
        Some(stored) => stored,
        None => {
            let secret = random_token();
            let id = sha256_hex(secret.as_bytes())[..16].to_owned();
            repo::store_server_key_once(db, &id, CODE_SECRET_PURPOSE, "HS256", &secret, clock.now()).await?
        }
    };
    Ok(SecretString::from(stored.material))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Validation, decode};
    use rsa::RsaPrivateKey;
    use serde_json::{Value, json};

    use super::*;

    fn header(key: &SigningKey) -> Header {
        let mut header = Header::new(key.algorithm);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(key.kid.clone());
        header
    }

    fn claims() -> Value {
        json!({ "sub": "someone", "aud": "idgate", "exp": 4_102_444_800_i64, "role": "user" })
    }

    fn verified(key: &SigningKey, token: &str) -> Value {
        let mut validation = Validation::new(key.algorithm);
        validation.set_audience(&["idgate"]);
        decode::<Value>(token, &key.decoding, &validation).unwrap_or_else(|e| panic!("{e}")).claims
    }

    fn rsa_pem(bits: usize) -> String {
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).unwrap_or_else(|e| panic!("{e}"));
        key.to_pkcs8_pem(LineEnding::LF).unwrap_or_else(|e| panic!("{e}")).as_str().to_owned()
    }

    #[test]
    fn a_generated_key_signs_through_ring_exactly_what_jsonwebtoken_would() {
        let pem = generate_rsa_pem().unwrap_or_else(|e| panic!("{e}"));
        let key =
            SigningKey::from_pem(JwtAlgorithm::RS256, pem.expose_secret(), None).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(key.signer, Signer::Rsa(_)));
        let token = key.sign(&header(&key), &claims()).unwrap_or_else(|e| panic!("{e}"));
        // PKCS#1 v1.5 signatures are deterministic: the same key and message give the same bytes.
        let encoding = EncodingKey::from_rsa_pem(pem.expose_secret().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let expected = jsonwebtoken::encode(&header(&key), &claims(), &encoding).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(token, expected);
        assert_eq!(verified(&key, &token), claims());
    }

    #[test]
    fn an_rsa_key_ring_refuses_still_signs_through_jsonwebtoken() {
        // 1,024 bits: below ring's minimum, and accepted from configuration before ring signed.
        let key = SigningKey::from_pem(JwtAlgorithm::RS256, &rsa_pem(1024), None).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(key.signer, Signer::Jwt(_)));
        let token = key.sign(&header(&key), &claims()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(verified(&key, &token), claims());
    }

    #[test]
    fn a_header_naming_another_algorithm_is_not_signed() {
        let pem = generate_rsa_pem().unwrap_or_else(|e| panic!("{e}"));
        let key =
            SigningKey::from_pem(JwtAlgorithm::RS256, pem.expose_secret(), None).unwrap_or_else(|e| panic!("{e}"));
        let mut header = header(&key);
        header.alg = Algorithm::RS512;
        assert!(key.sign(&header, &claims()).is_err());
    }
}
