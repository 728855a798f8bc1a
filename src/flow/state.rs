//! The `state` parameter and the PKCE verifier: 256 random bits each,
//! base64url. Only the state's SHA-256 is stored.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use crate::{domain::PkceVerifier, secret::Secret};

/// A fresh state value to hand to the caller.
pub(crate) struct StateToken(pub Secret);

impl StateToken {
    /// 32 random bytes from the OS-seeded generator.
    pub(crate) fn generate() -> Self {
        Self(Secret::new(
            URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()),
        ))
    }
}

/// The stored form of a state: hex SHA-256, so a database reader cannot
/// complete someone else's flow.
pub(crate) fn hash_state(state: &str) -> String {
    hex(&Sha256::digest(state.as_bytes()))
}

/// A PKCE code verifier (RFC 7636 §4.1): 43 characters of base64url.
pub(crate) fn pkce_verifier() -> PkceVerifier {
    PkceVerifier::new(URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
}

/// The S256 challenge of a verifier (RFC 7636 §4.2).
pub(crate) fn pkce_challenge(verifier: &PkceVerifier) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.secret().as_bytes()))
}

/// Lower-case hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_has_256_bits_and_is_unique() {
        let a = StateToken::generate();
        let b = StateToken::generate();
        assert_eq!(URL_SAFE_NO_PAD.decode(a.0.expose()).expect("b64").len(), 32);
        assert_ne!(a.0.expose(), b.0.expose());
        assert_eq!(hash_state(a.0.expose()).len(), 64);
        assert_ne!(hash_state(a.0.expose()), a.0.expose());
    }

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        let verifier = PkceVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            pkce_challenge(&verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(pkce_verifier().secret().len(), 43);
    }
}
