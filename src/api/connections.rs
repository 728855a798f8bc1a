//! GetConnection, ListConnections, RevokeConnection, GetUserInfo handlers.

use tonic::Status;

use super::{convert, validate};
use crate::{
    broker::{Broker, Caller},
    pb,
};

pub(super) async fn get(
    broker: &Broker,
    caller: &Caller,
    req: pb::GetConnectionRequest,
) -> Result<pb::GetConnectionResponse, Status> {
    let id = validate::connection_id(req.connection_id)?;
    let row = broker.connection(caller, &id).await?;
    Ok(pb::GetConnectionResponse {
        connection: Some(convert::connection(row)),
    })
}

pub(super) async fn list(
    broker: &Broker,
    caller: &Caller,
    req: pb::ListConnectionsRequest,
) -> Result<pb::ListConnectionsResponse, Status> {
    let subject = validate::optional("subject", req.subject, 256)?;
    let provider = validate::optional("provider", req.provider, 64)?;
    let rows = broker
        .list_connections(caller, subject.as_deref(), provider.as_deref())
        .await?;
    Ok(pb::ListConnectionsResponse {
        connections: rows.into_iter().map(convert::connection).collect(),
    })
}

pub(super) async fn revoke(
    broker: &Broker,
    caller: &Caller,
    req: pb::RevokeConnectionRequest,
) -> Result<pb::RevokeConnectionResponse, Status> {
    let id = validate::connection_id(req.connection_id)?;
    let row = broker.revoke(caller, &id).await?;
    Ok(pb::RevokeConnectionResponse {
        connection: Some(convert::connection(row)),
    })
}

pub(super) async fn user_info(
    broker: &Broker,
    caller: &Caller,
    req: pb::GetUserInfoRequest,
) -> Result<pb::GetUserInfoResponse, Status> {
    let id = validate::connection_id(req.connection_id)?;
    let profile = broker.user_info(caller, &id).await?;
    Ok(pb::GetUserInfoResponse {
        profile: Some(convert::json_struct(profile)),
    })
}
