//! The gRPC surface: translates proto <-> domain and nothing else. Each RPC
//! group lives in its own file; this one wires them into the service trait.

mod auth;
pub(crate) mod callers;
mod connections;
mod convert;
mod deadline;
mod paging;
mod rate;
mod tokens;
mod usage;
mod validate;

use std::{sync::Arc, time::Duration};

use tonic::{Request, Response, Status};

use crate::{
    audit::{Audit, Event},
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
    audit: Audit,
}

impl Api {
    /// Serves `broker`; a call without a deadline gets `request_timeout`;
    /// what calls do goes to `audit`.
    pub(crate) fn new(broker: Broker, request_timeout: Duration, audit: Audit) -> Self {
        Self {
            broker,
            request_timeout,
            audit,
        }
    }

    /// The caller the authentication interceptor attached to the request,
    /// and its policy, once the policy allows it to call `rpc`.
    fn caller<T>(
        &self,
        request: &Request<T>,
        rpc: &'static str,
    ) -> Result<(Caller, Arc<Policy>), Status> {
        let extensions = request.extensions();
        let (Some(caller), Some(policy)) =
            (extensions.get::<Caller>(), extensions.get::<Arc<Policy>>())
        else {
            return Err(Error::Unauthenticated("missing caller").into());
        };
        if let Err(denied) = policy.rpc(rpc) {
            let error = Error::denied(caller, denied);
            self.audit_error(caller, rpc, None, &error);
            return Err(error.into());
        }
        Ok((caller.clone(), policy.clone()))
    }

    /// Records an event of `caller`'s.
    fn audit(
        &self,
        caller: &Caller,
        connection_id: Option<&str>,
        action: &'static str,
        detail: Option<String>,
    ) {
        self.audit.record(Event {
            caller: caller.as_str().to_owned(),
            connection_id: connection_id.map(str::to_owned),
            action,
            outcome: "ok".to_owned(),
            detail,
        });
    }

    /// Records a failure worth auditing (a policy denial).
    fn audit_error(&self, caller: &Caller, rpc: &str, connection_id: Option<&str>, error: &Error) {
        if let Error::PolicyDenied { rule, .. } = error {
            self.audit.record(Event {
                caller: caller.as_str().to_owned(),
                connection_id: connection_id.map(str::to_owned),
                action: "policy_denied",
                outcome: "POLICY_DENIED".to_owned(),
                detail: Some(format!("{rpc}: rule {rule}")),
            });
        }
    }

    /// Records a connection made or re-authorized.
    fn audit_connected(&self, caller: &Caller, connection: &pb::Connection) {
        let action = if connection.created_at == connection.updated_at {
            "connection_created"
        } else {
            "connection_reauthorized"
        };
        self.audit(
            caller,
            Some(&connection.id),
            action,
            Some(format!("provider {}", connection.provider)),
        );
    }
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
        let (caller, policy) = self.caller(&request, "BeginAuth")?;
        let result = auth::begin(&self.broker, &caller, &policy, request.into_inner()).await;
        if let Err(e) = &result {
            self.audit_error(&caller, "BeginAuth", None, e);
        }
        respond(result)
    }

    async fn complete_auth(
        &self,
        request: Request<pb::CompleteAuthRequest>,
    ) -> RpcResult<pb::CompleteAuthResponse> {
        let (caller, policy) = self.caller(&request, "CompleteAuth")?;
        let result = auth::complete(&self.broker, &caller, &policy, request.into_inner()).await;
        match &result {
            Ok(pb::CompleteAuthResponse {
                outcome: Some(pb::complete_auth_response::Outcome::Connection(connection)),
            }) => self.audit_connected(&caller, connection),
            Ok(_) => {}
            Err(e) => self.audit_error(&caller, "CompleteAuth", None, e),
        }
        respond(result)
    }

    async fn sign_in_with_password(
        &self,
        request: Request<pb::SignInWithPasswordRequest>,
    ) -> RpcResult<pb::SignInWithPasswordResponse> {
        let (caller, policy) = self.caller(&request, "SignInWithPassword")?;
        let result = auth::password(&self.broker, &caller, &policy, request.into_inner()).await;
        match &result {
            Ok(pb::SignInWithPasswordResponse {
                connection: Some(connection),
            }) => self.audit_connected(&caller, connection),
            Ok(_) => {}
            Err(e) => self.audit_error(&caller, "SignInWithPassword", None, e),
        }
        respond(result)
    }

    async fn get_access_token(
        &self,
        request: Request<pb::GetAccessTokenRequest>,
    ) -> RpcResult<pb::GetAccessTokenResponse> {
        let (caller, policy) = self.caller(&request, "GetAccessToken")?;
        let wait = deadline::timeout(request.metadata()).map(deadline::wait_budget);
        let req = request.into_inner();
        let id = req.connection_id.clone();
        let result = tokens::get(&self.broker, &caller, &policy, req, wait).await;
        match &result {
            Ok(_) => self.audit.served(caller.as_str(), &id),
            Err(e) => self.audit_error(&caller, "GetAccessToken", Some(&id), e),
        }
        respond(result)
    }

    async fn record_usage(
        &self,
        request: Request<pb::RecordUsageRequest>,
    ) -> RpcResult<pb::RecordUsageResponse> {
        let (caller, policy) = self.caller(&request, "RecordUsage")?;
        // Without a deadline of its own, the server's: the answer
        // (USAGE_IN_PROGRESS at worst) leaves before the server cuts the call.
        let timeout = deadline::timeout(request.metadata())
            .map_or(self.request_timeout, |t| t.min(self.request_timeout));
        let wait = Some(deadline::wait_budget(timeout));
        let req = request.into_inner();
        let (id, credits) = (req.connection_id.clone(), req.credits);
        let result = usage::record(&self.broker, &caller, policy, req, wait).await;
        match &result {
            Ok(done) if !done.replayed => self.audit(
                &caller,
                Some(&id),
                "usage_charged",
                Some(format!("usage {} credits {credits}", done.usage_id)),
            ),
            Ok(_) => {}
            Err(e) => self.audit_error(&caller, "RecordUsage", Some(&id), e),
        }
        respond(result)
    }

    async fn resolve_usage(
        &self,
        request: Request<pb::ResolveUsageRequest>,
    ) -> RpcResult<pb::ResolveUsageResponse> {
        let (caller, _) = self.caller(&request, "ResolveUsage")?;
        let result = usage::resolve(&self.broker, &caller, request.into_inner()).await;
        if let Ok(done) = &result {
            self.audit(
                &caller,
                None,
                "usage_resolved",
                Some(format!(
                    "usage {} {}",
                    done.usage_id,
                    done.outcome().as_str_name()
                )),
            );
        }
        respond(result)
    }

    async fn get_user_info(
        &self,
        request: Request<pb::GetUserInfoRequest>,
    ) -> RpcResult<pb::GetUserInfoResponse> {
        let (caller, policy) = self.caller(&request, "GetUserInfo")?;
        let req = request.into_inner();
        let id = req.connection_id.clone();
        let result = connections::user_info(&self.broker, &caller, &policy, req).await;
        if let Err(e) = &result {
            self.audit_error(&caller, "GetUserInfo", Some(&id), e);
        }
        respond(result)
    }

    async fn get_connection(
        &self,
        request: Request<pb::GetConnectionRequest>,
    ) -> RpcResult<pb::GetConnectionResponse> {
        let (caller, _) = self.caller(&request, "GetConnection")?;
        respond(connections::get(&self.broker, &caller, request.into_inner()).await)
    }

    async fn list_connections(
        &self,
        request: Request<pb::ListConnectionsRequest>,
    ) -> RpcResult<pb::ListConnectionsResponse> {
        let (caller, _) = self.caller(&request, "ListConnections")?;
        respond(connections::list(&self.broker, &caller, request.into_inner()).await)
    }

    async fn update_connection_labels(
        &self,
        request: Request<pb::UpdateConnectionLabelsRequest>,
    ) -> RpcResult<pb::UpdateConnectionLabelsResponse> {
        let (caller, _) = self.caller(&request, "UpdateConnectionLabels")?;
        let result = connections::update_labels(&self.broker, &caller, request.into_inner()).await;
        if let Ok(pb::UpdateConnectionLabelsResponse {
            connection: Some(connection),
        }) = &result
        {
            self.audit(&caller, Some(&connection.id), "labels_changed", None);
        }
        respond(result)
    }

    async fn revoke_connection(
        &self,
        request: Request<pb::RevokeConnectionRequest>,
    ) -> RpcResult<pb::RevokeConnectionResponse> {
        let (caller, _) = self.caller(&request, "RevokeConnection")?;
        let result = connections::revoke(&self.broker, &caller, request.into_inner()).await;
        if let Ok(pb::RevokeConnectionResponse {
            connection: Some(connection),
            provider_revocation,
        }) = &result
        {
            let at_provider = pb::ProviderRevocation::try_from(*provider_revocation)
                .unwrap_or_default()
                .as_str_name();
            self.audit(
                &caller,
                Some(&connection.id),
                "connection_revoked",
                Some(format!("provider {}; {at_provider}", connection.provider)),
            );
        }
        respond(result)
    }
}
