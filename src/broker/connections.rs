//! GetConnection, ListConnections, RevokeConnection and GetUserInfo.

use serde_json::{Map, Value};

use super::{Broker, Caller, connect::log_status_change};
use crate::{
    error::{Error, Result},
    flow::ProviderFailure,
    store::{
        self,
        connections::{self, ConnectionRow, status},
    },
};

impl Broker {
    /// One of the caller's connections.
    pub async fn connection(&self, caller: &Caller, id: &str) -> Result<ConnectionRow> {
        connections::find(&self.inner.db, &caller.0, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("connection {id} not found")))
    }

    /// The caller's connections, newest first.
    pub async fn list_connections(
        &self,
        caller: &Caller,
        subject: Option<&str>,
        provider: Option<&str>,
    ) -> Result<Vec<ConnectionRow>> {
        Ok(connections::list(&self.inner.db, &caller.0, subject, provider).await?)
    }

    /// Deletes the stored tokens; the connection stays, REVOKED. Idempotent.
    pub async fn revoke(&self, caller: &Caller, id: &str) -> Result<ConnectionRow> {
        for _ in 0..3 {
            let row = self.connection(caller, id).await?;
            if row.status == status::REVOKED {
                return Ok(row);
            }
            let reason = "revoked by the caller";
            self.inner.cache.remove(id);
            if connections::set_status(
                &self.inner.db,
                id,
                row.version,
                status::REVOKED,
                reason,
                store::now(),
            )
            .await?
            {
                log_status_change(&row, status::REVOKED, reason);
                // Again after the write: a read that raced the revoke may have
                // cached the token meanwhile.
                self.inner.cache.remove(id);
                return self.connection(caller, id).await;
            }
        }
        Err(Error::Aborted(format!(
            "connection {id} kept changing; retry"
        )))
    }

    /// The provider's profile of the connected user. A 401 from the provider
    /// gets one forced refresh and one retry.
    pub async fn user_info(&self, caller: &Caller, id: &str) -> Result<Map<String, Value>> {
        let row = self.usable_connection(caller, id).await?;
        let provider = self.provider_of_row(&row.provider)?;
        let url = provider.profile.userinfo_url.clone().ok_or_else(|| {
            Error::FailedPrecondition(format!("provider {:?} has no user endpoint", provider.id))
        })?;
        let mut force = false;
        loop {
            let token = self.access_token(caller, id, 30, force).await?;
            match self.fetch_profile(&provider.id, &url, &token.token).await {
                Ok(profile) => return Ok(profile),
                Err(ProviderFailure::Rejected { error, .. })
                    if !force && error.as_str() == "http_401" =>
                {
                    force = true
                }
                Err(failure) => {
                    return Err(Error::provider(&provider.id, "user info request", failure));
                }
            }
        }
    }
}
