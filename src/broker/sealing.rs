//! Where each secret column's ciphertext is bound: table, row and field.

use crate::{
    crypto::{SealingKey, Slot},
    error::{Error, Result},
    secret::Secret,
};

/// Sealed column names.
pub(super) const ACCESS_TOKEN: &str = "access_token";
pub(super) const REFRESH_TOKEN: &str = "refresh_token";
pub(super) const PKCE_VERIFIER: &str = "pkce_verifier";

pub(super) fn connection_slot<'a>(row: &'a str, field: &'static str) -> Slot<'a> {
    Slot {
        table: "connections",
        row,
        field,
    }
}

pub(super) fn state_slot(row: &str) -> Slot<'_> {
    Slot {
        table: "auth_states",
        row,
        field: PKCE_VERIFIER,
    }
}

/// Opens a sealed column, turning failure into an internal error that names
/// the row but not the data.
pub(super) fn open(key: &SealingKey, sealed: &str, slot: Slot<'_>) -> Result<Secret> {
    key.open(sealed, slot).map_err(|e| {
        Error::Internal(anyhow::anyhow!(
            "cannot open {}.{} of row {}: {e}",
            slot.table,
            slot.field,
            slot.row
        ))
    })
}
