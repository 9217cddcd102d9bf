//! The cryptography jsonwebtoken runs in this process: its RustCrypto provider, except that RS256
//! signatures are checked with `ring`. RustCrypto builds the RSA public key from its modulus and
//! checks the signature in about 0.2 ms (5,000 a second on a core, the release bench); every
//! access token not yet in `TokenService`'s cache pays that on the request's thread, i.e. the
//! first request after each sign-in or refresh, and every forged token naming one of our keys
//! sent to make the server work. ring takes moduli of 1,024 to 8,192 bits here, RustCrypto up
//! to 4,096.
//!
//! jsonwebtoken takes one provider per process and fixes it at its first use, so [`install`]
//! runs before any: in `SigningKey::from_pem` (which derives the public key through it) and in
//! `TokenService::new`.

use std::sync::LazyLock;

use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind,
    crypto::{CryptoProvider, JwtVerifier, rust_crypto},
    errors::Result,
    signature::{self, Verifier},
};
use ring::signature::{RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, RsaPublicKeyComponents};

/// RustCrypto's provider with [`verifier`] in place of its verifier factory.
static PROVIDER: LazyLock<CryptoProvider> =
    LazyLock::new(|| CryptoProvider { verifier_factory: verifier, ..rust_crypto::DEFAULT_PROVIDER.clone() });

/// Makes [`PROVIDER`] the process's provider unless one is already set: ours by an earlier call,
/// or jsonwebtoken's default if something used jsonwebtoken first (it checks the same
/// signatures, more slowly).
pub fn install() {
    let _ = PROVIDER.install_default();
}

/// The verifier jsonwebtoken asks for each token: `ring` for RS256 with an RSA key given by its
/// modulus and exponent (the form `DecodingKey::from_jwk` gives, which is how `SigningKey` holds
/// its public half) of 1,024 bits or more, RustCrypto for anything else. ring's legacy parameters
/// take 1,024-bit moduli, which configuration accepts; smaller ones keep RustCrypto's answer.
fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    match (algorithm, key.family(), key.kind()) {
        (Algorithm::RS256, AlgorithmFamily::Rsa, DecodingKeyKind::RsaModulusExponent { n, e })
            if modulus_bits(n) >= 1024 =>
        {
            Ok(Box::new(RingRs256 { n: n.clone(), e: e.clone() }))
        }
        _ => (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(algorithm, key),
    }
}

/// The length in bits of a big-endian unsigned integer.
fn modulus_bits(n: &[u8]) -> usize {
    let zeros = n.iter().take_while(|&&byte| byte == 0).count();
    n.get(zeros).map_or(0, |&top| (n.len() - zeros) * 8 - top.leading_zeros() as usize)
}

/// RSASSA-PKCS1-v1_5 with SHA-256 against one public key.
struct RingRs256 {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl Verifier<Vec<u8>> for RingRs256 {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        RsaPublicKeyComponents { n: &self.n, e: &self.e }
            .verify(&RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, message, signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingRs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    use jsonwebtoken::{EncodingKey, Header, encode};
    use rsa::{
        RsaPrivateKey,
        pkcs8::{EncodePrivateKey, LineEnding},
    };
    use serde_json::json;

    use super::*;

    /// An RSA key of `bits` as jsonwebtoken holds it for signing and for checking.
    fn rsa_keys(bits: usize) -> (EncodingKey, DecodingKey) {
        install();
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).unwrap_or_else(|e| panic!("{e}"));
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap_or_else(|e| panic!("{e}"));
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let jwk =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap_or_else(|e| panic!("{e}"));
        (encoding, DecodingKey::from_jwk(&jwk).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Whether a verifier from `factory` accepts `signature` (base64url) over `message`.
    fn accepts(
        factory: fn(&Algorithm, &DecodingKey) -> Result<Box<dyn JwtVerifier>>,
        key: &DecodingKey,
        message: &str,
        signature: &str,
    ) -> bool {
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
        let verifier = factory(&Algorithm::RS256, key).unwrap_or_else(|e| panic!("{e}"));
        verifier.verify(message.as_bytes(), &signature).is_ok()
    }

    #[test]
    fn ring_accepts_and_refuses_exactly_the_signatures_rustcrypto_does() {
        for bits in [1024, 2048] {
            let (encoding, key) = rsa_keys(bits);
            let (_, other_key) = rsa_keys(bits);
            let token = encode(&Header::new(Algorithm::RS256), &json!({ "sub": "someone" }), &encoding)
                .unwrap_or_else(|e| panic!("{e}"));
            let (message, signature) = token.rsplit_once('.').unwrap_or_else(|| panic!("{token}"));
            let tampered_message = format!("{message}x");
            let mut flipped = URL_SAFE_NO_PAD.decode(signature).unwrap_or_else(|e| panic!("{e}"));
            flipped[10] ^= 1;
            let flipped = URL_SAFE_NO_PAD.encode(flipped);
            let cases = [
                ("the signature", &key, message, signature),
                ("another key", &other_key, message, signature),
                ("a changed message", &key, tampered_message.as_str(), signature),
                ("a flipped bit", &key, message, flipped.as_str()),
                ("a cut signature", &key, message, &signature[..signature.len() - 8]),
                ("no signature", &key, message, ""),
            ];
            for (case, key, message, signature) in cases {
                let ours = accepts(verifier, key, message, signature);
                let theirs = accepts(rust_crypto::DEFAULT_PROVIDER.verifier_factory, key, message, signature);
                assert_eq!(ours, theirs, "{bits} bits, {case}");
                assert_eq!(ours, case == "the signature", "{bits} bits, {case}");
            }
        }
    }

    /// A 4,608-bit key's modulus (exponent 65537) and its RS256 signature over [`BIG_KEY_MESSAGE`],
    /// made with `openssl genrsa 4608` and `openssl dgst -sha256 -sign`, in base64url.
    const BIG_KEY_MODULUS: &str = concat!(
        "umcWyM69zlHuE9wofZVZQSiBTDNrh_jNcSKjYlW37I8K1PDnCMR0-yzKPtq-QEY7p0f4hh0M0XPkJj8qb-dJURfOTNEsGHS_",
        "8RjMK3cuoltxJA9PSpYniAmmhKZjxYnqeu8HI6O9Lq-5mwJpEL24Zm1jrhM2LVD_KIOOaL391b6z0t3tR2Cwsoghs8df67eY",
        "3y2syOcLSMnwzcuX_vANc_XJEARxHwRNCclt2e6S1mp7fSfdW-_M34Oi7gS24vvya-W-49seKg9RWZnwwYvkcAx8tdcl62DM",
        "dG1zHPz-bFomNiK-i0PISibUzy_t-CwZUw_YVpsAHNMe8-ZNk5BFhMxu2-ilJmJ9RYjWDx5KGmSSXRLH0yB_BH8Q3RXtjiKk",
        "kbw7btyNXdT2Rh3kGr1ES3I3vK_MqxNv51W0TdwojI28m1o9XoilcMQPb3OD_UygmPFwbsMs6xgDn7CIYdOkrC7U38457mVP",
        "jYqBiRMtiJ7_YMPF-YvkWcFs8isd3o1ibqDP82ta6asxcew2sLI9iLbnRYG4zAnkAtvOUigJaMVDk4AF7618G8uDXopSZCZc",
        "dm6heO2rZn69p6pD0UgV-GAb-PB8GBV_5kC9-h5H8k96qyhy9Ou0leuSJ5cpev7n6QX3PYlOs9kUMr8CB3YA_SH1_Wi-t1Hq",
        "Ut98otgwjYCGZp3Fo3nCqX4f8bHLJK7kMOKGT6IQV7sFzJPqpB_G_5AaekRMnvVyJFX-FkPU09jMKxmGKTRfNl_WDLTMdSCV",
    );
    const BIG_KEY_SIGNATURE: &str = concat!(
        "jdcHxeIMFxOSDUhvHZgZEhoGUbnf-Yx4tLuXq120sacz26R_QzlMKNyR82jVWT_S3V6G3ETEwMq9oiK0VQgTnCgkev2qkGT8",
        "mSXbwktZijQGPAMrZwxbfXb2i4f6NbRPyYfZpXBYiNGT5CEmt9WJIXoDUl-kcWDGMOnOc2oNFE0TueZr69B48fEMl2VxKkoY",
        "Jn6WnTdQx6wW2AuWtlfjqTvKFkGGWPnyyQoZlxolF7UT7l8uC9MmNu_e6UAgq6_V3Lv9B9NvqUdsobJtowCKskxjRcvZcOlu",
        "kaf-TL0g9jvOSmo9fLqmPFHfP5-mJ5H_3FPYzjDYt3-lBEKSQ5uTzptdDZ_du2q-P96SE9YFKAuV8uFOg1RJB8-iEIWYJTeZ",
        "2g4WjBSHZUWyO30eCNN5ngYSNAOKQ-aFK-d7cYbcTMp8baScKm1Il8KBoQIrjG2V45gMkv8vKLkgZ4rRIkhBRdBFa4gXy8VS",
        "A2sDQ2veBZJVRQk7Z0nqVBWGBAu44LvkKwayzg_iXDhn-3eT-0PM289wGT4MW14_tkHY8BeWXMHNqZSYeVbQ0ph13YlQArxx",
        "CxP6Tq6YPWCD8QpkwhbLek2okkWUJzFD5yGQ9dYmdvh9ArtUWjpWbkAuV9zalOv45lVGfIugK2doHdEOY4DP2dX5oVejp6nb",
        "qL8KuoiyBJdGS6RYeQycAo7zLhlBccWkfdfy0rAZEeBR_suKd75y_3d88S7XDOHbGAveVef0Gtk0drQ0G-CtFF9jkKthDsZV",
    );
    const BIG_KEY_MESSAGE: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzb21lb25lIn0";

    #[test]
    fn once_installed_jsonwebtoken_checks_rs256_through_ring() {
        install();
        // RustCrypto refuses moduli over 4,096 bits, ring's parameters take up to 8,192: only
        // ring accepts this signature, so jsonwebtoken's answer tells which one checked it.
        let key = DecodingKey::from_rsa_components(BIG_KEY_MODULUS, "AQAB").unwrap_or_else(|e| panic!("{e}"));
        assert!(!accepts(rust_crypto::DEFAULT_PROVIDER.verifier_factory, &key, BIG_KEY_MESSAGE, BIG_KEY_SIGNATURE));
        let checked =
            jsonwebtoken::crypto::verify(BIG_KEY_SIGNATURE, BIG_KEY_MESSAGE.as_bytes(), &key, Algorithm::RS256);
        assert!(checked.unwrap_or_else(|e| panic!("{e}")));
    }

    #[test]
    fn a_modulus_length_counts_from_its_first_set_bit() {
        assert_eq!(modulus_bits(&[]), 0);
        assert_eq!(modulus_bits(&[0, 0]), 0);
        assert_eq!(modulus_bits(&[0, 1]), 1);
        assert_eq!(modulus_bits(&[0x80, 0]), 16);
        assert_eq!(modulus_bits(&[0, 0x7f, 0xff]), 15);
    }
}
