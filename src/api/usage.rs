//! RecordUsage handler.

use super::{convert, validate};
use crate::{
    broker::{Broker, UsageRequest},
    domain::{Caller, Policy},
    error::{Error, Result},
    pb,
};

pub(super) async fn resolve(
    broker: &Broker,
    caller: &Caller,
    req: pb::ResolveUsageRequest,
) -> Result<pb::ResolveUsageResponse> {
    let usage_id = validate::required("usage_id", req.usage_id, 64)?;
    let outcome = pb::UsageOutcome::try_from(req.outcome).unwrap_or(pb::UsageOutcome::Unspecified);
    let charged = match outcome {
        pb::UsageOutcome::Charged => true,
        pb::UsageOutcome::NotCharged => false,
        pb::UsageOutcome::Unspecified => {
            return Err(Error::invalid(
                "outcome",
                "required: USAGE_OUTCOME_CHARGED or USAGE_OUTCOME_NOT_CHARGED",
            ));
        }
    };
    broker.resolve_usage(caller, &usage_id, charged).await?;
    Ok(pb::ResolveUsageResponse {
        usage_id,
        outcome: outcome.into(),
    })
}

/// `wait`: how long the call may wait (from its deadline) before answering
/// USAGE_IN_PROGRESS while the attempt goes on.
pub(super) async fn record(
    broker: &Broker,
    caller: &Caller,
    policy: std::sync::Arc<Policy>,
    req: pb::RecordUsageRequest,
    wait: Option<std::time::Duration>,
) -> Result<pb::RecordUsageResponse> {
    let request = UsageRequest {
        connection_id: validate::connection_id(&req.connection_id)?,
        usage: validate::usage(req.usage)?,
        credits: validate::credits(req.credits)?,
        idempotency_key: validate::idempotency_key(req.idempotency_key)?,
        policy,
    };
    request
        .policy
        .credits_per_call(request.credits.value())
        .map_err(|denied| Error::denied(caller, denied))?;
    let outcome = broker.record_usage(caller, request, wait).await?;
    Ok(pb::RecordUsageResponse {
        usage_id: outcome.usage_id,
        provider_response: Some(convert::json_struct(outcome.provider_response)),
        replayed: outcome.replayed,
    })
}
