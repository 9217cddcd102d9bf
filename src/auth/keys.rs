//! Server keys: the access-token signing key and the secret keying code hashes. Configured
//! ones win; otherwise each is generated at first start and stored in the database, where the
//! first instance to store it wins and every other instance (and restart) reads the same one.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, jwk::Jwk};
use rsa::{RsaPrivateKey, pkcs8::EncodePrivateKey, pkcs8::LineEnding};
use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret, SecretString};

use super::repo;
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
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// The public key as published at /.well-known/jwks.json.
    pub public_jwk: Jwk,
}

impl SigningKey {
    /// Builds the key from a PKCS#8 PEM; `kid` defaults to a digest of the public key.
    pub fn from_pem(algorithm: JwtAlgorithm, pem: &str, kid: Option<String>) -> AppResult<Self> {
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
        Ok(Self { kid, algorithm, encoding, decoding, public_jwk })
    }
}

/// A fresh 2048-bit RSA key as PKCS#8 PEM (RS256 is what every JWT library verifies).
pub fn generate_rsa_pem() -> AppResult<SecretString> {
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(AppError::internal)?;
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(AppError::internal)?;
    Ok(SecretString::from(pem.as_str().to_owned()))
}

/// The signing key from settings, or the stored one, generating it at first start.
pub async fn load_signing_key(
    db: &DatabaseConnection,
    settings: &Settings,
    clock: &dyn Clock,
) -> AppResult<SigningKey> {
    if let Some(pem) = &settings.jwt_private_key {
        return SigningKey::from_pem(settings.jwt_algorithm, pem.expose_secret(), settings.jwt_key_id.clone());
    }
    if settings.jwt_algorithm != JwtAlgorithm::RS256 {
        return Err(AppError::internal(
            "IDGATE_JWT_ALGORITHM other than RS256 needs IDGATE_JWT_PRIVATE_KEY (only RS256 keys are generated)",
        ));
    }
    let stored = match repo::find_server_key(db, SIGNING_PURPOSE).await? {
        Some(stored) => stored,
        None => {
            let pem = tokio::task::spawn_blocking(generate_rsa_pem).await.map_err(AppError::internal)??;
            let kid = sha256_hex(pem.expose_secret().as_bytes())[..16].to_owned();
            repo::store_server_key_once(db, &kid, SIGNING_PURPOSE, "RS256", pem.expose_secret(), clock.now()).await?
        }
    };
    tracing::info!(kid = %stored.id, "access tokens are signed with the key stored in the database");
    SigningKey::from_pem(JwtAlgorithm::RS256, &stored.material, Some(stored.id))
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
