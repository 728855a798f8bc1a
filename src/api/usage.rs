//! RecordUsage handler.

use tonic::Status;

use super::{convert, validate};
use crate::{
    broker::{Broker, Caller, UsageRequest},
    error::Error,
    pb,
};

pub(super) async fn record(
    broker: &Broker,
    caller: &Caller,
    req: pb::RecordUsageRequest,
) -> Result<pb::RecordUsageResponse, Status> {
    let connection_id = validate::connection_id(req.connection_id)?;
    let usage = validate::required("usage", req.usage, 128)?;
    if !req.credits.is_finite() {
        return Err(Error::invalid("credits", "must be a finite number").into());
    }
    if req.credits < 0.0 {
        return Err(Error::invalid("credits", "must not be negative").into());
    }
    if req.credits > 1.0e12 {
        return Err(Error::invalid("credits", "at most 1e12").into());
    }
    let idempotency_key = validate::required("idempotency_key", req.idempotency_key, 128)?;
    let outcome = broker
        .record_usage(
            caller,
            UsageRequest {
                connection_id,
                usage,
                credits: req.credits,
                idempotency_key,
            },
        )
        .await?;
    Ok(pb::RecordUsageResponse {
        usage_id: outcome.usage_id,
        provider_response: Some(convert::json_struct(outcome.provider_response)),
        replayed: outcome.replayed,
    })
}
