//! What a RecordUsage asks and answers, and the answer a settled key replays.

use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{
    domain::{ConnectionId, Credits, IdempotencyKey, Policy, UsageLabel},
    flow::state::hex,
    store::usage::UsageEntry,
};

/// A parsed RecordUsage request.
#[derive(Clone)]
pub(crate) struct UsageRequest {
    /// Connection charged.
    pub(crate) connection_id: ConnectionId,
    /// Usage reason.
    pub(crate) usage: UsageLabel,
    /// Credits.
    pub(crate) credits: Credits,
    /// Caller-chosen idempotency key.
    pub(crate) idempotency_key: IdempotencyKey,
    /// The caller's policy (providers, daily credits); not part of the
    /// request's identity.
    pub(crate) policy: Arc<Policy>,
}

impl UsageRequest {
    pub(crate) fn hash(&self) -> String {
        let text = format!(
            "{}\n{}\n{}",
            self.connection_id,
            self.usage.as_str(),
            self.credits
        );
        hex(&Sha256::digest(text.as_bytes()))
    }
}

/// A confirmed usage.
pub(crate) struct UsageOutcome {
    /// Ledger id.
    pub(crate) usage_id: String,
    /// The provider's confirmation.
    pub(crate) provider_response: Map<String, Value>,
    /// Whether this is an earlier call's stored result.
    pub(crate) replayed: bool,
}

/// The stored confirmation of a settled key, as a replay.
pub(crate) fn replay(entry: &UsageEntry) -> UsageOutcome {
    let provider_response = entry
        .provider_response
        .as_deref()
        .and_then(|text| serde_json::from_str::<Map<String, Value>>(text).ok())
        .unwrap_or_default();
    UsageOutcome {
        usage_id: entry.id.clone(),
        provider_response,
        replayed: true,
    }
}
