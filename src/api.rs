//! The gRPC surface: translates proto <-> domain and nothing else. Each RPC
//! group lives in its own file; this one wires them into the service trait.

mod auth;
pub(crate) mod callers;
mod connections;
mod convert;
mod deadline;
mod rate;
mod tokens;
mod usage;
mod validate;

use std::{sync::Arc, time::Duration};

use tonic::{Request, Response, Status};

use crate::{
    broker::Broker,
    domain::{Caller, Policy},
    error::Error,
    pb::{self, auth_broker_server::AuthBroker},
};

/// The `authbroker.v1.AuthBroker` service.
pub(crate) struct Api {
    broker: Broker,
    /// The deadline of a call that brings none.
    request_timeout: Duration,
}

impl Api {
    /// Serves `broker`; a call without a deadline gets `request_timeout`.
    pub(crate) fn new(broker: Broker, request_timeout: Duration) -> Self {
        Self {
            broker,
            request_timeout,
        }
    }
}

/// The caller the authentication interceptor attached to the request, and
/// its policy, once the policy allows it to call `rpc`.
fn caller<T>(request: &Request<T>, rpc: &str) -> Result<(Caller, Arc<Policy>), Status> {
    let extensions = request.extensions();
    let (Some(caller), Some(policy)) =
        (extensions.get::<Caller>(), extensions.get::<Arc<Policy>>())
    else {
        return Err(Error::Unauthenticated("missing caller").into());
    };
    policy
        .rpc(rpc)
        .map_err(|denied| Status::from(Error::denied(caller, denied)))?;
    Ok((caller.clone(), policy.clone()))
}

type RpcResult<T> = Result<Response<T>, Status>;

/// The handler's answer as a gRPC response; errors go through the one mapping.
fn respond<T>(result: crate::error::Result<T>) -> RpcResult<T> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl AuthBroker for Api {
    async fn begin_auth(
        &self,
        request: Request<pb::BeginAuthRequest>,
    ) -> RpcResult<pb::BeginAuthResponse> {
        let (caller, policy) = caller(&request, "BeginAuth")?;
        respond(auth::begin(&self.broker, &caller, &policy, request.into_inner()).await)
    }

    async fn complete_auth(
        &self,
        request: Request<pb::CompleteAuthRequest>,
    ) -> RpcResult<pb::CompleteAuthResponse> {
        let (caller, policy) = caller(&request, "CompleteAuth")?;
        respond(auth::complete(&self.broker, &caller, &policy, request.into_inner()).await)
    }

    async fn sign_in_with_password(
        &self,
        request: Request<pb::SignInWithPasswordRequest>,
    ) -> RpcResult<pb::SignInWithPasswordResponse> {
        let (caller, policy) = caller(&request, "SignInWithPassword")?;
        respond(auth::password(&self.broker, &caller, &policy, request.into_inner()).await)
    }

    async fn get_access_token(
        &self,
        request: Request<pb::GetAccessTokenRequest>,
    ) -> RpcResult<pb::GetAccessTokenResponse> {
        let (caller, policy) = caller(&request, "GetAccessToken")?;
        let wait = deadline::timeout(request.metadata()).map(deadline::wait_budget);
        respond(tokens::get(&self.broker, &caller, &policy, request.into_inner(), wait).await)
    }

    async fn record_usage(
        &self,
        request: Request<pb::RecordUsageRequest>,
    ) -> RpcResult<pb::RecordUsageResponse> {
        let (caller, policy) = caller(&request, "RecordUsage")?;
        // Without a deadline of its own, the server's: the answer
        // (USAGE_IN_PROGRESS at worst) leaves before the server cuts the call.
        let timeout = deadline::timeout(request.metadata())
            .map_or(self.request_timeout, |t| t.min(self.request_timeout));
        let wait = Some(deadline::wait_budget(timeout));
        respond(usage::record(&self.broker, &caller, policy, request.into_inner(), wait).await)
    }

    async fn resolve_usage(
        &self,
        request: Request<pb::ResolveUsageRequest>,
    ) -> RpcResult<pb::ResolveUsageResponse> {
        let (caller, _) = caller(&request, "ResolveUsage")?;
        respond(usage::resolve(&self.broker, &caller, request.into_inner()).await)
    }

    async fn get_user_info(
        &self,
        request: Request<pb::GetUserInfoRequest>,
    ) -> RpcResult<pb::GetUserInfoResponse> {
        let (caller, policy) = caller(&request, "GetUserInfo")?;
        respond(connections::user_info(&self.broker, &caller, &policy, request.into_inner()).await)
    }

    async fn get_connection(
        &self,
        request: Request<pb::GetConnectionRequest>,
    ) -> RpcResult<pb::GetConnectionResponse> {
        let (caller, _) = caller(&request, "GetConnection")?;
        respond(connections::get(&self.broker, &caller, request.into_inner()).await)
    }

    async fn list_connections(
        &self,
        request: Request<pb::ListConnectionsRequest>,
    ) -> RpcResult<pb::ListConnectionsResponse> {
        let (caller, _) = caller(&request, "ListConnections")?;
        respond(connections::list(&self.broker, &caller, request.into_inner()).await)
    }

    async fn revoke_connection(
        &self,
        request: Request<pb::RevokeConnectionRequest>,
    ) -> RpcResult<pb::RevokeConnectionResponse> {
        let (caller, _) = caller(&request, "RevokeConnection")?;
        respond(connections::revoke(&self.broker, &caller, request.into_inner()).await)
    }
}
