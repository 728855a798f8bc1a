//! ES256 signing keys (P-256 with ring), their JWKS form (RFC 7518 §6.2.1), compact JWS (RFC 7515
//! §7.1), and the check a relying party makes, which proves the signing here.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use serde_json::{Value, json};

use super::wire;

/// One P-256 key pair and its public coordinates.
pub struct SigningKey {
    kid: String,
    pair: EcdsaKeyPair,
    /// base64url of the public point's coordinates, as the JWK carries them.
    x: String,
    y: String,
}

impl SigningKey {
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let alg = &ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("ring generates a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
            .expect("ring reads back the key it generated");
        // The uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..]);
        Self {
            kid: wire::random_hex(8),
            pair,
            x,
            y,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWKS entry.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": self.x,
            "y": self.y,
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        })
    }

    /// RFC 7518 §3.4: the 64-byte `r || s` form, which ring's FIXED algorithms produce.
    pub fn sign(&self, signing_input: &[u8]) -> Vec<u8> {
        let signature = self
            .pair
            .sign(&SystemRandom::new(), signing_input)
            .expect("ring signs with a key it generated");
        signature.as_ref().to_vec()
    }
}

/// The provider's keys: every published one (the last is current), and one never published, for
/// `Forgery::WrongKey`.
pub struct Keys {
    published: Vec<SigningKey>,
    rogue: SigningKey,
}

impl Keys {
    pub fn generate() -> Self {
        Self {
            published: vec![SigningKey::generate()],
            rogue: SigningKey::generate(),
        }
    }

    /// The key new id_tokens are signed with.
    pub fn current(&self) -> &SigningKey {
        self.published
            .last()
            .expect("there is always a published key")
    }

    pub fn rogue(&self) -> &SigningKey {
        &self.rogue
    }

    /// A new current key; the old ones stay published, as in a rollover.
    pub fn rotate(&mut self) {
        self.published.push(SigningKey::generate());
    }

    /// The JWKS document (RFC 7517 §5).
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.published.iter().map(SigningKey::jwk).collect();
        json!({ "keys": keys })
    }
}

/// `base64url(header) "." base64url(payload)`, what the signature covers.
pub fn signing_input(header: &Value, payload: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(header.to_string());
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    format!("{header}.{payload}")
}

/// The compact serialization, signed by `key`.
pub fn sign_compact(key: &SigningKey, header: &Value, payload: &Value) -> String {
    let input = signing_input(header, payload);
    let signature = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()));
    format!("{input}.{signature}")
}

/// Whether `sig` (64 bytes, `r || s`) is an ES256 signature of `signing_input` by the JWK with these
/// base64url coordinates.
pub fn verify_es256(jwk_x: &str, jwk_y: &str, signing_input: &[u8], sig: &[u8]) -> bool {
    let (Ok(x), Ok(y)) = (URL_SAFE_NO_PAD.decode(jwk_x), URL_SAFE_NO_PAD.decode(jwk_y)) else {
        return false;
    };
    if x.len() != 32 || y.len() != 32 {
        return false;
    }
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
        .verify(signing_input, sig)
        .is_ok()
}

#[test]
fn es256_signatures_verify_against_the_published_jwk_only() {
    let key = SigningKey::generate();
    let header = json!({ "alg": "ES256", "typ": "JWT", "kid": key.kid() });
    let token = sign_compact(&key, &header, &json!({ "sub": "someone" }));
    let (input, signature) = token
        .rsplit_once('.')
        .expect("a compact JWS has three parts");
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("the signature is base64url");
    assert_eq!(signature.len(), 64, "ES256 signatures are r || s");

    let jwk = key.jwk();
    let coordinate =
        |jwk: &Value, name: &str| jwk[name].as_str().expect("a JWK coordinate").to_owned();
    let (x, y) = (coordinate(&jwk, "x"), coordinate(&jwk, "y"));
    assert!(verify_es256(&x, &y, input.as_bytes(), &signature));

    let mut tampered = signature.clone();
    tampered[10] ^= 1;
    assert!(!verify_es256(&x, &y, input.as_bytes(), &tampered));
    assert!(!verify_es256(&x, &y, b"another.input", &signature));
    let other = SigningKey::generate().jwk();
    let (ox, oy) = (coordinate(&other, "x"), coordinate(&other, "y"));
    assert!(!verify_es256(&ox, &oy, input.as_bytes(), &signature));
}
