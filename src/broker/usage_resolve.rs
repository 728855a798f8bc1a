//! ResolveUsage: settling a usage whose outcome is unknown with what the
//! caller verified with the provider.

use super::usage::UsageLedger;
use crate::{
    domain::{Caller, UsageStatus},
    error::{Error, Result},
    store::usage,
};

impl UsageLedger {
    /// Settles a usage whose outcome is unknown with what the caller
    /// verified: charged (the key replays as succeeded) or not (the key
    /// reports again). Logged with who said so.
    pub(crate) async fn resolve(
        &self,
        caller: &Caller,
        usage_id: &str,
        charged: bool,
    ) -> Result<()> {
        let entry = usage::find_by_id(&self.db, caller, usage_id)
            .await?
            .ok_or_else(|| Error::UsageNotFound {
                usage_id: usage_id.to_owned(),
            })?;
        let (to, outcome) = if charged {
            (UsageStatus::Succeeded, "charged")
        } else {
            (UsageStatus::Retryable, "not charged")
        };
        let note = format!("resolved as {outcome} by {}", caller.as_str());
        if entry.status != UsageStatus::Unknown
            || !usage::resolve(&self.db, &entry.id, to, &note, self.clock.now()).await?
        {
            let status = usage::find_by_id(&self.db, caller, usage_id)
                .await?
                .map_or(entry.status, |e| e.status);
            return Err(Error::UsageNotUnknown {
                usage_id: entry.id,
                status: status.as_str(),
            });
        }
        tracing::warn!(
            usage_id,
            caller = caller.as_str(),
            outcome,
            "usage outcome resolved"
        );
        Ok(())
    }
}
