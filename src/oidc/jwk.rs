//! Signing keys from a JWK Set (RFC 7517) and JWS signature checks
//! (RFC 7518 §3) with `ring`. Only asymmetric algorithms: `none` and the
//! HMAC ones are never accepted, so a token cannot vouch for itself.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;

use crate::flow::Classify;

/// A JWS algorithm authbroker verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl Alg {
    /// The `alg` header value, if supported.
    pub(crate) fn parse(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "EdDSA" => Alg::EdDsa,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
        }
    }
}

/// A JWK as published; unknown members are ignored (RFC 7517 §4).
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

#[derive(Debug)]
enum Material {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
}

/// A public key fit to check signatures.
#[derive(Debug)]
pub(crate) struct VerifyingKey {
    /// `kid`, if the set names it.
    pub(crate) kid: Option<String>,
    /// `alg`, if the set pins it.
    alg: Option<String>,
    material: Material,
}

/// The signing keys of a JWK Set document; keys for encryption, of unknown
/// types or malformed are skipped (a set may hold keys for other uses).
pub(crate) fn parse_set(body: &[u8]) -> Result<Vec<VerifyingKey>, String> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_slice(body)
        .map_err(|e| format!("key set is not a JWK Set ({})", e.classify_str()))?;
    Ok(set
        .keys
        .into_iter()
        .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
        .filter_map(VerifyingKey::from_jwk)
        .collect())
}

impl VerifyingKey {
    fn from_jwk(jwk: Jwk) -> Option<Self> {
        if jwk.usage.as_deref().is_some_and(|u| u != "sig") {
            return None;
        }
        let bytes = |v: &Option<String>| v.as_deref().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
        let material = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("RSA", _) => {
                // ring takes the modulus without leading zeros.
                let n = bytes(&jwk.n)?;
                let first = n.iter().position(|b| *b != 0)?;
                Material::Rsa {
                    n: n[first..].to_vec(),
                    e: bytes(&jwk.e)?,
                }
            }
            ("EC", Some(crv @ ("P-256" | "P-384"))) => {
                let (x, y) = (bytes(&jwk.x)?, bytes(&jwk.y)?);
                let size = if crv == "P-256" { 32 } else { 48 };
                if x.len() != size || y.len() != size {
                    return None;
                }
                // The uncompressed point: 0x04 || x || y (SEC 1 §2.3.3).
                let point = [&[4u8][..], &x, &y].concat();
                if size == 32 {
                    Material::P256(point)
                } else {
                    Material::P384(point)
                }
            }
            ("OKP", Some("Ed25519")) => Material::Ed25519(bytes(&jwk.x)?),
            _ => return None,
        };
        Some(Self {
            kid: jwk.kid,
            alg: jwk.alg,
            material,
        })
    }

    /// Whether this key can check a signature made with `alg`.
    pub(crate) fn fits(&self, alg: Alg) -> bool {
        if self
            .alg
            .as_deref()
            .is_some_and(|pinned| pinned != alg.name())
        {
            return false;
        }
        matches!(
            (&self.material, alg),
            (
                Material::Rsa { .. },
                Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512
            ) | (Material::P256(_), Alg::Es256)
                | (Material::P384(_), Alg::Es384)
                | (Material::Ed25519(_), Alg::EdDsa)
        )
    }

    /// Whether `sig` is this key's `alg` signature of `message`.
    pub(crate) fn verifies(&self, alg: Alg, message: &[u8], sig: &[u8]) -> bool {
        if !self.fits(alg) {
            return false;
        }
        let checked = match &self.material {
            Material::Rsa { n, e } => {
                let params: &signature::RsaParameters = match alg {
                    Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Alg::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Alg::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Alg::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                    _ => &signature::RSA_PSS_2048_8192_SHA512,
                };
                RsaPublicKeyComponents { n, e }.verify(params, message, sig)
            }
            // JWS ECDSA signatures are r || s, fixed width (RFC 7518 §3.4).
            Material::P256(point) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
            }
            Material::P384(point) => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                    .verify(message, sig)
            }
            Material::Ed25519(x) => {
                UnparsedPublicKey::new(&signature::ED25519, x).verify(message, sig)
            }
        };
        checked.is_ok()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use ring::{
        rand::SystemRandom,
        signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair},
    };

    use super::*;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A P-256 key pair and its JWK.
    pub(crate) fn es256_key(kid: &str) -> (EcdsaKeyPair, serde_json::Value) {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("pair");
        let public = pair.public_key().as_ref();
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": b64(&public[1..33]), "y": b64(&public[33..65]),
        });
        (pair, jwk)
    }

    fn set(keys: &[serde_json::Value]) -> Vec<VerifyingKey> {
        parse_set(&serde_json::to_vec(&serde_json::json!({ "keys": keys })).expect("json"))
            .expect("set")
    }

    #[test]
    fn es256_signatures_verify_with_their_key_only() {
        let (pair, jwk) = es256_key("k1");
        let (_, other) = es256_key("k2");
        let rng = SystemRandom::new();
        let sig = pair.sign(&rng, b"message").expect("sign");
        let keys = set(&[jwk, other]);
        assert_eq!(keys.len(), 2);
        assert!(keys[0].verifies(Alg::Es256, b"message", sig.as_ref()));
        assert!(!keys[0].verifies(Alg::Es256, b"massage", sig.as_ref()));
        assert!(!keys[1].verifies(Alg::Es256, b"message", sig.as_ref()));
        // A key pinned to ES256 checks nothing else.
        assert!(!keys[0].fits(Alg::Rs256));
    }

    #[test]
    fn ed25519_signatures_verify() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pair");
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())});
        let keys = set(&[jwk]);
        let sig = pair.sign(b"message");
        assert!(keys[0].verifies(Alg::EdDsa, b"message", sig.as_ref()));
        assert!(!keys[0].verifies(Alg::Es256, b"message", sig.as_ref()));
    }

    #[test]
    fn encryption_and_unknown_keys_are_skipped() {
        let (_, mut enc) = es256_key("e");
        enc["use"] = "enc".into();
        let keys = set(&[
            enc,
            serde_json::json!({"kty": "oct", "k": "c2VjcmV0"}),
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
        ]);
        assert!(keys.is_empty());
        assert!(parse_set(b"[]").is_err());
        assert_eq!(Alg::parse("none"), None);
        assert_eq!(Alg::parse("HS256"), None);
    }
}
