//! The three RPCs the soak makes, each sent to one replica with the soak's deadline and written
//! down as a `Call`.

use std::time::Duration;

use authbroker::pb;

use crate::{
    client::timed,
    cluster::{Cluster, Pick},
    connections::Connections,
    journal::{Call, Phase, Rpc},
};

/// Every call's gRPC deadline.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// GetAccessToken's `min_valid_seconds`: a quarter of the tokens' 20 s life, so each connection
/// refreshes about every 15 s. (authbroker's default, 60 s, is beyond such a token's life: it would
/// refresh whenever the 5 s cooldown has passed.)
pub const MIN_VALID_SECS: u32 = 5;
/// Credits per usage.
const CREDITS: f64 = 1.0;

pub async fn get_token(
    cluster: &Cluster,
    pick: &Pick,
    connections: &Connections,
    connection: usize,
    phase: Phase,
) -> (Call, Option<pb::GetAccessTokenResponse>) {
    let request = pb::GetAccessTokenRequest {
        connection_id: connections.get(connection).id.clone(),
        min_valid_seconds: MIN_VALID_SECS,
        force_refresh: false,
        ..Default::default()
    };
    let mut client = pick.client.clone();
    let t = timed(DEADLINE, request, |r| client.get_access_token(r)).await;
    let mut call = Call::record(
        cluster,
        pick,
        Rpc::GetAccessToken,
        phase,
        connection,
        None,
        DEADLINE,
        &t,
    );
    let answer = t.result.ok();
    call.expires_at = answer
        .as_ref()
        .and_then(|a| a.expires_at.as_ref())
        .map(|at| at.seconds);
    (call, answer)
}

/// Reports one credit under `key`. The usage label is the key too, so the fake's record of each
/// charge names the key it was for (the provider knows nothing of idempotency keys).
pub async fn record_usage(
    cluster: &Cluster,
    pick: &Pick,
    connections: &Connections,
    connection: usize,
    key: &str,
    phase: Phase,
) -> (Call, Option<pb::RecordUsageResponse>) {
    let request = pb::RecordUsageRequest {
        connection_id: connections.get(connection).id.clone(),
        usage: key.to_owned(),
        credits: CREDITS,
        idempotency_key: key.to_owned(),
    };
    let mut client = pick.client.clone();
    let t = timed(DEADLINE, request, |r| client.record_usage(r)).await;
    let call = Call::record(
        cluster,
        pick,
        Rpc::RecordUsage,
        phase,
        connection,
        Some(key),
        DEADLINE,
        &t,
    );
    (call, t.result.ok())
}

/// Settles the unknown outcome of `usage_id` (the attempt of `key`) with what the fake recorded.
pub async fn resolve_usage(
    cluster: &Cluster,
    pick: &Pick,
    connection: usize,
    key: &str,
    usage_id: &str,
    charged: bool,
) -> (Call, Option<pb::ResolveUsageResponse>) {
    let outcome = if charged {
        pb::UsageOutcome::Charged
    } else {
        pb::UsageOutcome::NotCharged
    };
    let request = pb::ResolveUsageRequest {
        usage_id: usage_id.to_owned(),
        outcome: outcome.into(),
    };
    let mut client = pick.client.clone();
    let t = timed(DEADLINE, request, |r| client.resolve_usage(r)).await;
    let call = Call::record(
        cluster,
        pick,
        Rpc::ResolveUsage,
        Phase::Check,
        connection,
        Some(key),
        DEADLINE,
        &t,
    );
    (call, t.result.ok())
}
