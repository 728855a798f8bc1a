//! Sealing and opening the secrets at rest, each bound to its table, row and
//! column so that a ciphertext copied elsewhere does not open.

use crate::{
    crypto::{KeyRing, Slot},
    domain::{AccessToken, ConnectionId, PkceVerifier, RefreshToken, Sealed},
    error::{Error, Result},
    flow::{TokenSet, expiry},
    store::connections::TokenWrite,
};

const CONNECTIONS: &str = "connections";
const ACCESS_TOKEN: &str = "access_token";
const REFRESH_TOKEN: &str = "refresh_token";
const AUTH_STATES: &str = "auth_states";
const PKCE_VERIFIER: &str = "pkce_verifier";

/// The key ring and where each secret goes.
pub(crate) struct Vault {
    key: KeyRing,
}

impl Vault {
    /// Seals with the ring's active key, opens with any of its keys.
    pub(crate) fn new(key: KeyRing) -> Self {
        Self { key }
    }

    /// Seals a token answer for connection `id`. `previous_refresh` is kept
    /// when the answer carries no new refresh token.
    pub(crate) fn seal_tokens(
        &self,
        id: ConnectionId,
        tokens: &TokenSet,
        previous_refresh: Option<Sealed>,
        default_lifetime_secs: u64,
        now: i64,
    ) -> TokenWrite {
        let row = id.to_string();
        TokenWrite {
            access_token: self.key.seal(
                tokens.access_token.secret(),
                slot(CONNECTIONS, &row, ACCESS_TOKEN),
            ),
            refresh_token: tokens
                .refresh_token
                .as_ref()
                .map(|rt| {
                    self.key
                        .seal(rt.secret(), slot(CONNECTIONS, &row, REFRESH_TOKEN))
                })
                .or(previous_refresh),
            token_type: tokens.token_type.clone(),
            expires_at: expiry::expires_at(now, tokens.expires_in, default_lifetime_secs),
            key_id: self.key.active().id().to_owned(),
            // Stamped by the caller, which knows the provider's cadence.
            refresh_due_at: None,
        }
    }

    /// Opens connection `id`'s access token.
    pub(crate) fn open_access(&self, id: ConnectionId, sealed: &Sealed) -> Result<AccessToken> {
        let row = id.to_string();
        self.open(sealed, slot(CONNECTIONS, &row, ACCESS_TOKEN))
            .map(|s| AccessToken::new(s.expose()))
    }

    /// Opens connection `id`'s refresh token.
    pub(crate) fn open_refresh(&self, id: ConnectionId, sealed: &Sealed) -> Result<RefreshToken> {
        let row = id.to_string();
        self.open(sealed, slot(CONNECTIONS, &row, REFRESH_TOKEN))
            .map(|s| RefreshToken::new(s.expose()))
    }

    /// Seals the PKCE verifier of the state with this hash.
    pub(crate) fn seal_verifier(&self, state_hash: &str, verifier: &PkceVerifier) -> Sealed {
        self.key.seal(
            verifier.secret(),
            slot(AUTH_STATES, state_hash, PKCE_VERIFIER),
        )
    }

    /// Opens the PKCE verifier of the state with this hash.
    pub(crate) fn open_verifier(&self, state_hash: &str, sealed: &Sealed) -> Result<PkceVerifier> {
        self.open(sealed, slot(AUTH_STATES, state_hash, PKCE_VERIFIER))
            .map(|s| PkceVerifier::new(s.expose()))
    }

    /// Opens a sealed column; failure is an internal error naming the row,
    /// never the data.
    fn open(&self, sealed: &Sealed, slot: Slot<'_>) -> Result<crate::secret::Secret> {
        self.key.open(sealed, slot).map_err(|e| {
            Error::internal(anyhow::anyhow!(
                "cannot open {}.{} of row {}: {e}",
                slot.table,
                slot.field,
                slot.row
            ))
        })
    }
}

/// Re-sealing under the ring's active key (`rekey`).
impl Vault {
    /// Opens a connection row's access token (to prove a key opens it).
    pub(crate) fn open_access_row(
        ring: &KeyRing,
        row: &str,
        sealed: &Sealed,
    ) -> std::result::Result<(), crate::crypto::OpenError> {
        ring.open(sealed, slot(CONNECTIONS, row, ACCESS_TOKEN))
            .map(drop)
    }

    /// A connection's tokens, opened and sealed again with the active key.
    pub(crate) fn reseal_connection(
        ring: &KeyRing,
        stale: &crate::store::keys::Stale,
    ) -> anyhow::Result<(Sealed, Option<Sealed>)> {
        let row = stale.id.as_str();
        let again = |sealed: &Sealed, field: &'static str| -> anyhow::Result<Sealed> {
            let slot = slot(CONNECTIONS, row, field);
            let plain = ring
                .open(sealed, slot)
                .map_err(|e| anyhow::anyhow!("{field}: {e}"))?;
            Ok(ring.seal(plain.expose(), slot))
        };
        let access = stale
            .access_token
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no access token"))
            .and_then(|a| again(a, ACCESS_TOKEN))?;
        let refresh = stale
            .refresh_token
            .as_ref()
            .map(|r| again(r, REFRESH_TOKEN))
            .transpose()?;
        Ok((access, refresh))
    }

    /// A pending state's PKCE verifier, sealed again with the active key.
    pub(crate) fn reseal_verifier(
        ring: &KeyRing,
        state_hash: &str,
        sealed: &Sealed,
    ) -> anyhow::Result<Sealed> {
        let slot = slot(AUTH_STATES, state_hash, PKCE_VERIFIER);
        let plain = ring
            .open(sealed, slot)
            .map_err(|e| anyhow::anyhow!("pkce_verifier: {e}"))?;
        Ok(ring.seal(plain.expose(), slot))
    }
}

fn slot<'a>(table: &'static str, row: &'a str, field: &'static str) -> Slot<'a> {
    Slot { table, row, field }
}
