//! PKCE (RFC 7636), S256 only: the challenge's shape at the authorization request and the verifier's
//! check at the code exchange.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::wire::Reject;

/// Whether `challenge` can be an S256 challenge: a SHA-256 digest in base64url without padding, which is
/// always 43 characters (§4.2).
pub(super) fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// §4.6: the verifier must be well formed and `BASE64URL(SHA256(ASCII(code_verifier)))` must equal the
/// challenge of the authorization request.
pub(super) fn check_verifier(verifier: &str, challenge: &str) -> Result<(), Reject> {
    // §4.1: 43 to 128 unreserved characters.
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed {
        return Err(Reject::invalid_request(
            "code_verifier is not 43 to 128 unreserved characters (RFC 7636 §4.1)",
        ));
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if computed != challenge {
        return Err(Reject::invalid_grant(
            "code_verifier does not match the code_challenge (RFC 7636 §4.6)",
        ));
    }
    Ok(())
}
