//! RecordUsage within the caller's deadline: the ledger's work goes on
//! (detached where it calls the provider) while the call answers
//! USAGE_IN_PROGRESS in time.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use super::{UsageOutcome, UsageRequest, usage::UsageLedger};
use crate::{
    domain::Caller,
    error::{Error, Result},
};

impl UsageLedger {
    /// Records usage within the caller's `wait`: past it the call answers
    /// USAGE_IN_PROGRESS, while the attempt (detached) still settles the
    /// key, so a retry with the same key replays or waits for it.
    pub(crate) async fn record_within(
        self: &Arc<Self>,
        caller: &Caller,
        req: UsageRequest,
        wait: Option<Duration>,
    ) -> Result<UsageOutcome> {
        let Some(wait) = wait else {
            return self.record(caller, req, &Mutex::new(None)).await;
        };
        let key = req.idempotency_key.clone();
        let entry = Mutex::new(None);
        match tokio::time::timeout(wait, self.record(caller, req, &entry)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                let known = entry.lock().unwrap_or_else(|e| e.into_inner()).take();
                tracing::info!(
                    idempotency_key = key.as_str(),
                    usage_id = known.as_deref().unwrap_or_default(),
                    "usage report still in progress at the caller's deadline"
                );
                Err(Error::UsageInProgress {
                    usage_id: known.unwrap_or_default(),
                })
            }
        }
    }
}
