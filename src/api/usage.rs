//! RecordUsage handler.

use super::{convert, validate};
use crate::{
    broker::{Broker, UsageRequest},
    domain::Caller,
    error::Result,
    pb,
};

pub(super) async fn record(
    broker: &Broker,
    caller: &Caller,
    req: pb::RecordUsageRequest,
) -> Result<pb::RecordUsageResponse> {
    let request = UsageRequest {
        connection_id: validate::connection_id(&req.connection_id)?,
        usage: validate::usage(req.usage)?,
        credits: validate::credits(req.credits)?,
        idempotency_key: validate::idempotency_key(req.idempotency_key)?,
    };
    let outcome = broker.record_usage(caller, request).await?;
    Ok(pb::RecordUsageResponse {
        usage_id: outcome.usage_id,
        provider_response: Some(convert::json_struct(outcome.provider_response)),
        replayed: outcome.replayed,
    })
}
