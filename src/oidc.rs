//! OpenID Connect (`kind = "oidc"`): the endpoints come from the issuer's
//! discovery document, and every `id_token` is checked (signature against
//! the issuer's cached key set, `iss`, `aud`, `exp`, `nonce`) before its
//! `sub` becomes the connection's account at the provider.

mod discovery;
mod id_token;
mod jwk;
mod keys;

use std::sync::OnceLock;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

pub(crate) use discovery::{Discovered, discovery_url, parse_discovery};
pub(crate) use id_token::{Expect, IdTokenError, verify as verify_id_token};
pub(crate) use keys::KeyCache;

use crate::providers::ClientAuth;

/// An oidc provider's identity and what its config fixes; the rest is
/// discovered at start (and retried in the background until it is).
#[derive(Debug)]
pub struct Oidc {
    /// The issuer identifier: discovery must name exactly it, and so must
    /// every `id_token`.
    pub(crate) issuer: String,
    /// Settings given in config, which win over the discovered ones.
    pub(crate) overrides: Overrides,
    /// The discovered key set URL.
    pub(crate) jwks_uri: OnceLock<String>,
    /// The issuer's signing keys.
    pub(crate) keys: KeyCache,
}

impl Oidc {
    /// An issuer not yet discovered.
    pub(crate) fn new(issuer: String, overrides: Overrides) -> Self {
        Self {
            issuer,
            overrides,
            jwks_uri: OnceLock::new(),
            keys: KeyCache::default(),
        }
    }
}

/// What config sets explicitly for an oidc provider.
#[derive(Debug, Default, Clone)]
pub(crate) struct Overrides {
    /// `authorize_url`.
    pub(crate) authorize_url: Option<String>,
    /// `token_url`.
    pub(crate) token_url: Option<String>,
    /// `userinfo_url`.
    pub(crate) userinfo_url: Option<String>,
    /// `revocation_url`.
    pub(crate) revocation_url: Option<String>,
    /// `client_auth`.
    pub(crate) client_auth: Option<ClientAuth>,
    /// `require_iss`.
    pub(crate) require_iss: Option<bool>,
}

/// The `nonce` of the flow begun with `state` (OIDC Core 3.1.2.1): derived
/// from the state, which only the caller holds and only its hash is stored,
/// so nothing more is kept and a database reader cannot compute it.
pub(crate) fn nonce(state: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"authbroker oidc nonce\0");
    hash.update(state.as_bytes());
    URL_SAFE_NO_PAD.encode(hash.finalize())
}

#[cfg(test)]
mod tests {
    #[test]
    fn nonces_differ_per_state_and_hide_it() {
        let a = super::nonce("state-a");
        assert_eq!(a, super::nonce("state-a"));
        assert_ne!(a, super::nonce("state-b"));
        assert!(!a.contains("state-a"));
        assert_eq!(a.len(), 43);
    }
}
