//! GetConnection, ListConnections, RevokeConnection, GetUserInfo handlers.

use super::{convert, paging, validate};
use crate::{
    broker::{Broker, ListFilter, ProviderRevocation},
    domain::{Caller, ConnectionStatus, Policy},
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
    let status = match pb::ConnectionStatus::try_from(req.status) {
        Ok(pb::ConnectionStatus::Unspecified) => None,
        Ok(pb::ConnectionStatus::Active) => Some(ConnectionStatus::Active),
        Ok(pb::ConnectionStatus::NeedsReauth) => Some(ConnectionStatus::NeedsReauth),
        Ok(pb::ConnectionStatus::Revoked) => Some(ConnectionStatus::Revoked),
        Err(_) => return Err(Error::invalid("status", "not a ConnectionStatus value")),
    };
    let labels = validate::labels("labels", req.labels)?;
    let page_size = match req.page_size {
        n if n < 0 => return Err(Error::invalid("page_size", "must not be negative")),
        0 => paging::DEFAULT_PAGE_SIZE,
        n => (n as u64).min(paging::MAX_PAGE_SIZE),
    };
    let filter = ListFilter {
        subject: subject.as_ref(),
        provider: provider.as_ref(),
        status,
        labels: Some(&labels),
    };
    let fingerprint = paging::fingerprint(&filter);
    let after = paging::decode(&req.page_token, &fingerprint)?;
    // One more than asked: whether a next page exists.
    let mut connections = broker
        .list_connections(caller, &filter, after.as_ref(), page_size + 1)
        .await?;
    let next_page_token = if connections.len() as u64 > page_size {
        connections.truncate(page_size as usize);
        connections
            .last()
            .map(|last| paging::encode(last, &fingerprint))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(pb::ListConnectionsResponse {
        connections: connections.into_iter().map(convert::connection).collect(),
        next_page_token,
    })
}

pub(super) async fn update_labels(
    broker: &Broker,
    caller: &Caller,
    req: pb::UpdateConnectionLabelsRequest,
) -> Result<pb::UpdateConnectionLabelsResponse> {
    let id = validate::connection_id(&req.connection_id)?;
    let labels = validate::labels("labels", req.labels)?;
    let connection = broker.set_labels(caller, id, &labels).await?;
    Ok(pb::UpdateConnectionLabelsResponse {
        connection: Some(convert::connection(connection)),
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
