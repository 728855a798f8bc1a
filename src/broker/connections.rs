//! Looking after existing connections: GetConnection, ListConnections,
//! RevokeConnection and GetUserInfo.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use serde_json::{Map, Value};

use super::{provider_client::ProviderClient, registry::Providers, status, tokens::TokenService};
use crate::{
    clock::SharedClock,
    domain::{Caller, Connection, ConnectionId, ConnectionStatus, ProviderId, Subject},
    error::{Error, Result, Step},
    flow::ProviderFailure,
    store::connections,
};

/// How long the token used for a user info call must live.
// Enough for one provider call; a 401 still gets one forced refresh and a
// retry. Not more: a need beyond what a short-lived provider's token gives
// would renew the connection on every call.
const TOKEN_MIN_VALID_SECS: i64 = 10;

/// The caller's view of its connections.
pub(crate) struct Connections {
    pub(crate) db: DatabaseConnection,
    pub(crate) tokens: Arc<TokenService>,
    pub(crate) client: Arc<ProviderClient>,
    pub(crate) providers: Arc<Providers>,
    pub(crate) clock: SharedClock,
}

impl Connections {
    /// One of the caller's connections.
    pub(crate) async fn get(&self, caller: &Caller, id: ConnectionId) -> Result<Connection> {
        connections::find(&self.db, caller, id)
            .await?
            .ok_or(Error::ConnectionNotFound { id })
    }

    /// The caller's connections, newest first.
    pub(crate) async fn list(
        &self,
        caller: &Caller,
        subject: Option<&Subject>,
        provider: Option<&ProviderId>,
    ) -> Result<Vec<Connection>> {
        Ok(connections::list(&self.db, caller, subject, provider).await?)
    }

    /// Deletes the stored tokens; the connection stays, REVOKED. Idempotent.
    pub(crate) async fn revoke(&self, caller: &Caller, id: ConnectionId) -> Result<Connection> {
        let reason = "revoked by the caller";
        for _ in 0..3 {
            let Some(row) = connections::find_tokens(&self.db, caller, id).await? else {
                return Err(Error::ConnectionNotFound { id });
            };
            if row.connection.status == ConnectionStatus::Revoked {
                return Ok(row.connection);
            }
            self.tokens.forget(id);
            if connections::set_status(
                &self.db,
                id,
                row.version,
                ConnectionStatus::Revoked,
                reason,
                self.clock.now(),
            )
            .await?
            {
                status::log_change(&row.connection, ConnectionStatus::Revoked, reason);
                // Again after the write: a read that raced the revoke may have
                // cached the token meanwhile.
                self.tokens.forget(id);
                return self.get(caller, id).await;
            }
        }
        Err(Error::Conflict("the connection kept changing"))
    }

    /// The provider's profile of the connected user. A 401 from the provider
    /// gets one forced refresh and one retry.
    pub(crate) async fn user_info(
        &self,
        caller: &Caller,
        id: ConnectionId,
    ) -> Result<Map<String, Value>> {
        let connection = status::usable(self.get(caller, id).await?)?;
        let provider = self.providers.stored(&connection.provider)?;
        let url =
            provider
                .profile
                .userinfo_url
                .clone()
                .ok_or_else(|| Error::ProviderUnsupported {
                    provider: provider.id.clone(),
                    what: "has no user endpoint",
                })?;
        let mut force = false;
        loop {
            let token = self
                .tokens
                .access_token(caller, id, TOKEN_MIN_VALID_SECS, force, None)
                .await?;
            match self.client.profile(&provider, &url, &token.token).await {
                Ok(profile) => return Ok(profile),
                Err(ProviderFailure::Rejected {
                    http_status: 401, ..
                }) if !force => force = true,
                Err(failure) => {
                    return Err(Error::provider(&provider.id, Step::UserInfo, failure));
                }
            }
        }
    }
}
