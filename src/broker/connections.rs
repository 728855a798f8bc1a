//! Looking after existing connections: GetConnection, ListConnections,
//! RevokeConnection and GetUserInfo.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use serde_json::{Map, Value};

use super::{
    provider_client::ProviderClient, registry::Providers, status, tokens::TokenService,
    vault::Vault,
};
use crate::{
    clock::SharedClock,
    domain::{Caller, Connection, ConnectionId, ConnectionStatus, Labels},
    error::{Error, Result, Step},
    flow::{ProviderFailure, revocation::Hint},
    store::connections,
};

/// How long the token used for a user info call must live.
// Enough for one provider call; a 401 still gets one forced refresh and a
// retry. Not more: a need beyond what a short-lived provider's token gives
// would renew the connection on every call.
const TOKEN_MIN_VALID_SECS: i64 = 10;

/// What the provider said to a revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProviderRevocation {
    /// The provider has no revocation endpoint.
    NoEndpoint,
    /// The provider answered 200 for every token.
    Confirmed,
    /// A token's revocation failed (unreachable, refused, or unreadable).
    Failed,
    /// Revoked earlier: nothing left to send.
    AlreadyRevoked,
}

/// The caller's view of its connections.
pub(crate) struct Connections {
    pub(crate) db: DatabaseConnection,
    pub(crate) vault: Arc<Vault>,
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
        filter: &connections::ListFilter<'_>,
        after: Option<&connections::PageAfter>,
        limit: u64,
    ) -> Result<Vec<Connection>> {
        Ok(connections::list(&self.db, caller, filter, after, limit).await?)
    }

    /// Replaces the connection's labels.
    pub(crate) async fn set_labels(
        &self,
        caller: &Caller,
        id: ConnectionId,
        labels: &Labels,
    ) -> Result<Connection> {
        connections::set_labels(&self.db, caller, id, labels, self.clock.now())
            .await?
            .ok_or(Error::ConnectionNotFound { id })
    }

    /// Deletes the stored tokens; the connection stays, REVOKED. Idempotent.
    /// Then, where the provider has a revocation endpoint, revokes the
    /// tokens there too (RFC 7009): the refresh token, then the access token.
    /// The local revoke stands whatever the provider answers.
    pub(crate) async fn revoke(
        &self,
        caller: &Caller,
        id: ConnectionId,
    ) -> Result<(Connection, ProviderRevocation)> {
        let reason = "revoked by the caller";
        for _ in 0..3 {
            let Some(row) = connections::find_tokens(&self.db, caller, id).await? else {
                return Err(Error::ConnectionNotFound { id });
            };
            if row.connection.status == ConnectionStatus::Revoked {
                return Ok((row.connection, ProviderRevocation::AlreadyRevoked));
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
                let at_provider = self.revoke_at_provider(&row).await;
                return Ok((self.get(caller, id).await?, at_provider));
            }
        }
        Err(Error::Conflict("the connection kept changing"))
    }

    /// Revokes a row's tokens (read before the local revoke) at its provider.
    async fn revoke_at_provider(&self, row: &connections::TokenRow) -> ProviderRevocation {
        let id = row.connection.id;
        let provider = match self.providers.stored(&row.connection.provider) {
            Ok(provider) => provider,
            // Removed from the config: nothing to revoke with.
            Err(Error::ProviderRemoved { .. }) => return ProviderRevocation::NoEndpoint,
            // An OpenID issuer not discovered yet may well have an endpoint:
            // the grant may still be live there.
            Err(e) => {
                tracing::warn!(connection_id = %id, error = %e, "cannot revoke at the provider");
                return ProviderRevocation::Failed;
            }
        };
        let Some(url) = provider.profile.revocation_url.clone() else {
            return ProviderRevocation::NoEndpoint;
        };
        let mut tokens = Vec::new();
        if let Some(sealed) = &row.refresh_token {
            match self.vault.open_refresh(id, sealed) {
                Ok(t) => tokens.push((t.secret().to_owned(), Hint::Refresh)),
                Err(e) => {
                    tracing::warn!(connection_id = %id, error = %e, "cannot open the refresh token to revoke it")
                }
            }
        }
        if let Some(sealed) = &row.access_token {
            match self.vault.open_access(id, sealed) {
                Ok(t) => tokens.push((t.secret().to_owned(), Hint::Access)),
                Err(e) => {
                    tracing::warn!(connection_id = %id, error = %e, "cannot open the access token to revoke it")
                }
            }
        }
        let mut confirmed = !tokens.is_empty();
        for (token, hint) in tokens {
            let token = zeroize::Zeroizing::new(token);
            if let Err(failure) = self.client.revoke(&provider, &url, &token, hint).await {
                tracing::warn!(connection_id = %id, provider = %provider.id, ?hint, ?failure, "the provider did not confirm the revocation");
                confirmed = false;
            }
        }
        if confirmed {
            tracing::info!(connection_id = %id, provider = %provider.id, "tokens revoked at the provider");
            ProviderRevocation::Confirmed
        } else {
            ProviderRevocation::Failed
        }
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
