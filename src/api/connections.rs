//! GetConnection, ListConnections, RevokeConnection, GetUserInfo handlers.

use super::{convert, validate};
use crate::{
    broker::{Broker, ProviderRevocation},
    domain::{Caller, Policy},
    error::{Error, Result},
    pb,
};

pub(super) async fn get(
    broker: &Broker,
    caller: &Caller,
    req: pb::GetConnectionRequest,
) -> Result<pb::GetConnectionResponse> {
    let id = validate::connection_id(&req.connection_id)?;
    let connection = broker.connection(caller, id).await?;
    Ok(pb::GetConnectionResponse {
        connection: Some(convert::connection(connection)),
    })
}

pub(super) async fn list(
    broker: &Broker,
    caller: &Caller,
    req: pb::ListConnectionsRequest,
) -> Result<pb::ListConnectionsResponse> {
    let subject = validate::subject_filter(req.subject)?;
    let provider = validate::provider_filter(req.provider)?;
    let connections = broker
        .list_connections(caller, subject.as_ref(), provider.as_ref())
        .await?;
    Ok(pb::ListConnectionsResponse {
        connections: connections.into_iter().map(convert::connection).collect(),
    })
}

pub(super) async fn revoke(
    broker: &Broker,
    caller: &Caller,
    req: pb::RevokeConnectionRequest,
) -> Result<pb::RevokeConnectionResponse> {
    let id = validate::connection_id(&req.connection_id)?;
    let (connection, at_provider) = broker.revoke(caller, id).await?;
    let provider_revocation = match at_provider {
        ProviderRevocation::NoEndpoint => pb::ProviderRevocation::NoEndpoint,
        ProviderRevocation::Confirmed => pb::ProviderRevocation::Confirmed,
        ProviderRevocation::Failed => pb::ProviderRevocation::Failed,
        ProviderRevocation::AlreadyRevoked => pb::ProviderRevocation::AlreadyRevoked,
    };
    Ok(pb::RevokeConnectionResponse {
        connection: Some(convert::connection(connection)),
        provider_revocation: provider_revocation.into(),
    })
}

pub(super) async fn user_info(
    broker: &Broker,
    caller: &Caller,
    policy: &Policy,
    req: pb::GetUserInfoRequest,
) -> Result<pb::GetUserInfoResponse> {
    let id = validate::connection_id(&req.connection_id)?;
    if policy.providers.is_some() {
        let connection = broker.connection(caller, id).await?;
        policy
            .provider(connection.provider.as_str())
            .map_err(|denied| Error::denied(caller, denied))?;
    }
    let profile = broker.user_info(caller, id).await?;
    Ok(pb::GetUserInfoResponse {
        profile: Some(convert::json_struct(profile)),
    })
}
