//! The gRPC surface: translates proto <-> domain and nothing else. Each RPC
//! group lives in its own file; this one wires them into the service trait.

mod auth;
pub mod callers;
mod connections;
mod convert;
mod tokens;
mod usage;
mod validate;

use tonic::{Request, Response, Status};

use crate::{
    broker::{Broker, Caller},
    pb::{self, auth_broker_server::AuthBroker},
};

/// The `authbroker.v1.AuthBroker` service.
pub struct Api {
    broker: Broker,
}

impl Api {
    /// Serves `broker`.
    pub fn new(broker: Broker) -> Self {
        Self { broker }
    }
}

/// The caller the authentication interceptor attached to the request.
fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("missing caller"))
}

type RpcResult<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl AuthBroker for Api {
    async fn begin_auth(
        &self,
        request: Request<pb::BeginAuthRequest>,
    ) -> RpcResult<pb::BeginAuthResponse> {
        let caller = caller(&request)?;
        auth::begin(&self.broker, &caller, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn complete_auth(
        &self,
        request: Request<pb::CompleteAuthRequest>,
    ) -> RpcResult<pb::CompleteAuthResponse> {
        let caller = caller(&request)?;
        auth::complete(&self.broker, &caller, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn sign_in_with_password(
        &self,
        request: Request<pb::SignInWithPasswordRequest>,
    ) -> RpcResult<pb::SignInWithPasswordResponse> {
        let caller = caller(&request)?;
        auth::password(&self.broker, &caller, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_access_token(
        &self,
        request: Request<pb::GetAccessTokenRequest>,
    ) -> RpcResult<pb::GetAccessTokenResponse> {
        let caller = caller(&request)?;
        tokens::get(&self.broker, &caller, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn record_usage(
        &self,
        request: Request<pb::RecordUsageRequest>,
    ) -> RpcResult<pb::RecordUsageResponse> {
        let caller = caller(&request)?;
        usage::record(&self.broker, &caller, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_user_info(
        &self,
        request: Request<pb::GetUserInfoRequest>,
    ) -> RpcResult<pb::GetUserInfoResponse> {
        let caller = caller(&request)?;
        connections::user_info(&self.broker, &caller, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_connection(
        &self,
        request: Request<pb::GetConnectionRequest>,
    ) -> RpcResult<pb::GetConnectionResponse> {
        let caller = caller(&request)?;
        connections::get(&self.broker, &caller, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_connections(
        &self,
        request: Request<pb::ListConnectionsRequest>,
    ) -> RpcResult<pb::ListConnectionsResponse> {
        let caller = caller(&request)?;
        connections::list(&self.broker, &caller, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn revoke_connection(
        &self,
        request: Request<pb::RevokeConnectionRequest>,
    ) -> RpcResult<pb::RevokeConnectionResponse> {
        let caller = caller(&request)?;
        connections::revoke(&self.broker, &caller, request.into_inner())
            .await
            .map(Response::new)
    }
}
