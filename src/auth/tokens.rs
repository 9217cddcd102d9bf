//! Access tokens: JWTs (`typ: at+jwt`, RFC 9068) signed with the server's asymmetric key, and
//! optionally encrypted around that signature (`security::jwe`).
//!
//! Verification pins the algorithm and our own key id, never follows `jku`, `x5u` or an
//! embedded `jwk`, refuses any `crit` header, requires exp, iss, aud and sub, and checks
//! expiry, `iat` and `nbf` against the injected clock with a small leeway. RS256 signatures are
//! checked with `ring` (`auth::jwt_crypto`). Verified tokens are cached by the SHA-256 of the
//! token (never the token itself), and a cached entry is never used past its `exp`.

use std::sync::{Arc, PoisonError, RwLock};

use jsonwebtoken::{Header, Validation, decode, decode_header};
use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{keys::KeyRing, model::AccessClaims};
use crate::{
    clock::Clock,
    domain::{Principal, Role, UserId},
    error::{AppError, AppResult},
    security::jwe::TokenCipher,
    telemetry,
};

/// Clock skew tolerated between idgate instances and resource servers, in seconds.
pub const LEEWAY_SECS: i64 = 30;
const TOKEN_TYPE: &str = "at+jwt";

/// Issues and verifies access tokens.
pub struct TokenService {
    /// Swapped whole when keys rotate (see `keys::KeyStore`).
    ring: RwLock<Arc<KeyRing>>,
    issuer: String,
    audience: String,
    ttl_secs: u64,
    clock: Arc<dyn Clock>,
    validation: Validation,
    verified: Cache<[u8; 32], Arc<AccessClaims>>,
    /// With IDGATE_ACCESS_TOKEN_ENCRYPTION=dir: tokens are sealed after signing.
    cipher: Option<TokenCipher>,
}

impl TokenService {
    pub fn new(
        ring: KeyRing,
        issuer: &str,
        audience: &str,
        ttl_secs: u64,
        clock: Arc<dyn Clock>,
        cache_capacity: usize,
    ) -> Self {
        super::jwt_crypto::install();
        // The algorithm is pinned per key in `verify_signature`; this one is replaced there.
        let mut validation = Validation::new(ring.signer.algorithm);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked below against the injected clock, not the library's system time.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Self {
            ring: RwLock::new(Arc::new(ring)),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_secs,
            clock,
            validation,
            verified: Cache::new(cache_capacity),
            cipher: None,
        }
    }

    /// Issues encrypted tokens (JWE around the JWS) and accepts them. Signed-only tokens issued
    /// before encryption was turned on keep working until they expire.
    pub fn with_cipher(mut self, cipher: Option<TokenCipher>) -> Self {
        self.cipher = cipher;
        self
    }

    /// Lifetime of new access tokens, in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// Puts freshly loaded keys in force. A key dropped from the ring stops verifying at once,
    /// also for tokens in the cache.
    pub fn install(&self, ring: KeyRing) {
        let dropped = {
            let current = self.keys();
            current.verifiers.iter().any(|old| !ring.verifiers.iter().any(|new| new.kid == old.kid))
        };
        *self.ring.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ring);
        if dropped {
            self.verified.clear();
        }
    }

    fn keys(&self) -> Arc<KeyRing> {
        Arc::clone(&self.ring.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The public key set for /.well-known/jwks.json: every key whose tokens may be alive, and
    /// keys about to sign.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self.keys().verifiers.iter().map(|k| k.public_jwk.clone()).collect();
        serde_json::json!({ "keys": keys })
    }

    /// Signs a token for `user` in `session`.
    pub fn issue(&self, user: UserId, session: Uuid, role: Role) -> AppResult<String> {
        let now = self.clock.now().timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.to_string(),
            sid: session.to_string(),
            role: role.as_str().to_owned(),
            iat: now,
            exp: now + i64::try_from(self.ttl_secs).unwrap_or(i64::MAX),
            nbf: None,
            jti: Uuid::new_v4().to_string(),
        };
        let ring = self.keys();
        let mut header = Header::new(ring.signer.algorithm);
        header.typ = Some(TOKEN_TYPE.to_owned());
        header.kid = Some(ring.signer.kid.clone());
        let signed = ring.signer.sign(&header, &claims)?;
        match &self.cipher {
            Some(cipher) => cipher.seal(&signed),
            None => Ok(signed),
        }
    }

    /// Checks signature and claims (not revocation: see `AuthService::authenticate`).
    ///
    /// Errors: UNAUTHENTICATED for anything but a valid, unexpired token of ours.
    pub fn verify(&self, token: &str) -> AppResult<Principal> {
        principal(self.verify_claims(token)?.as_ref())
    }

    /// The claims of a valid, unexpired token of ours (not revocation), from the cache when
    /// this token was verified before.
    ///
    /// Errors: UNAUTHENTICATED.
    pub fn verify_claims(&self, token: &str) -> AppResult<Arc<AccessClaims>> {
        let now = self.clock.now().timestamp();
        let fingerprint: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cached = self.verified.get(&fingerprint);
        telemetry::metrics().token_cache_lookup(cached.is_some());
        if let Some(claims) = cached {
            if claims.exp + LEEWAY_SECS > now {
                return Ok(claims);
            }
            self.verified.remove(&fingerprint);
            return Err(AppError::Unauthenticated);
        }
        let claims = match (&self.cipher, token.split('.').count()) {
            (Some(cipher), 5) => self.verify_signature(&cipher.open(token)?)?,
            (_, 3) => self.verify_signature(token)?,
            _ => return Err(AppError::Unauthenticated),
        };
        let not_yet = claims.iat > now + LEEWAY_SECS || claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS);
        if claims.exp + LEEWAY_SECS <= now || not_yet {
            return Err(AppError::Unauthenticated);
        }
        principal(&claims)?;
        let claims = Arc::new(claims);
        self.verified.insert(fingerprint, Arc::clone(&claims));
        Ok(claims)
    }

    fn verify_signature(&self, token: &str) -> AppResult<AccessClaims> {
        let header = decode_header(token).map_err(|_| AppError::Unauthenticated)?;
        let ring = self.keys();
        let key = ring.verifiers.iter().find(|k| header.kid.as_deref() == Some(k.kid.as_str()));
        let Some(key) = key else { return Err(AppError::Unauthenticated) };
        let ours = header.alg == key.algorithm
            && header.typ.as_deref().is_some_and(|typ| typ.eq_ignore_ascii_case(TOKEN_TYPE))
            && header.jku.is_none()
            && header.x5u.is_none()
            && header.jwk.is_none()
            // RFC 7515 §4.1.11: extensions listed as critical must be understood; we know none.
            && header.crit.is_none();
        if !ours {
            return Err(AppError::Unauthenticated);
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![key.algorithm];
        decode::<AccessClaims>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| AppError::Unauthenticated)
    }
}

fn principal(claims: &AccessClaims) -> AppResult<Principal> {
    let user_id = Uuid::parse_str(&claims.sub).map_err(|_| AppError::Unauthenticated)?;
    let session_id = Uuid::parse_str(&claims.sid).map_err(|_| AppError::Unauthenticated)?;
    Ok(Principal { user_id: UserId(user_id), session_id, role: Role::from_db(&claims.role) })
}
