//! GetAccessToken: serve the stored token while it lives long enough,
//! otherwise refresh it once for all concurrent callers.

use std::sync::Arc;

use super::{Broker, Caller, connect::log_status_change, sealing};
use crate::{
    config::ProviderSetting,
    error::{Error, Result},
    flow::{self, Freshness, Grant, OAuthError, ProviderFailure},
    secret::Secret,
    store::{
        self,
        connections::{self, ConnectionRow, status},
    },
};

/// A token handed to the caller.
pub struct AccessToken {
    /// The token.
    pub token: Secret,
    /// Usually "Bearer".
    pub token_type: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl Broker {
    /// A token valid for at least `min_valid_secs`, refreshed when needed.
    pub async fn access_token(
        &self,
        caller: &Caller,
        id: &str,
        min_valid_secs: i64,
        force: bool,
    ) -> Result<AccessToken> {
        let row = self.usable_connection(caller, id).await?;
        if flow::freshness(
            store::now(),
            row.access_token_expires_at,
            min_valid_secs,
            force,
        ) == Freshness::Fresh
        {
            return self.open_access(&row);
        }

        let lock = self.refresh_lock(id);
        let result = {
            let _guard = lock.lock().await;
            self.refresh_if_still_needed(caller, &row, min_valid_secs, force)
                .await
        };
        self.release_refresh_lock(id, lock);
        result
    }

    /// Under the connection's refresh lock: re-reads the row and refreshes
    /// only if nobody else already did.
    async fn refresh_if_still_needed(
        &self,
        caller: &Caller,
        seen: &ConnectionRow,
        min_valid_secs: i64,
        force: bool,
    ) -> Result<AccessToken> {
        let current = self.usable_connection(caller, &seen.id).await?;
        let now = store::now();
        // Another caller refreshed while this one waited: that token is as
        // fresh as the provider gives, so it serves this call too (even a
        // forced one, or one asking for more than the provider's lifetime).
        let refreshed_meanwhile = current.version != seen.version
            && current.access_token_expires_at.is_some_and(|exp| exp > now);
        if refreshed_meanwhile
            || flow::freshness(now, current.access_token_expires_at, min_valid_secs, force)
                == Freshness::Fresh
        {
            return self.open_access(&current);
        }
        let provider = self.provider_of_row(&current.provider)?;
        self.refresh(&provider, current).await
    }

    /// The caller's connection, if it can serve tokens.
    pub(super) async fn usable_connection(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<ConnectionRow> {
        let row = connections::find(&self.inner.db, &caller.0, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("connection {id} not found")))?;
        match row.status.as_str() {
            status::ACTIVE => Ok(row),
            status::NEEDS_REAUTH => Err(Error::FailedPrecondition(format!(
                "connection {id} needs re-authorization: {}",
                row.status_reason
                    .as_deref()
                    .unwrap_or("the provider refused its tokens")
            ))),
            _ => Err(Error::FailedPrecondition(format!(
                "connection {id} is revoked"
            ))),
        }
    }

    fn open_access(&self, row: &ConnectionRow) -> Result<AccessToken> {
        let sealed = row.access_token.as_deref().ok_or_else(|| {
            Error::FailedPrecondition(format!("connection {} has no access token", row.id))
        })?;
        Ok(AccessToken {
            token: sealing::open(
                &self.inner.key,
                sealed,
                sealing::connection_slot(&row.id, sealing::ACCESS_TOKEN),
            )?,
            token_type: row.token_type.clone(),
            expires_at: row.access_token_expires_at.unwrap_or_default(),
        })
    }

    /// Refreshes `row` with the provider and stores the new pair before
    /// returning the access token.
    async fn refresh(&self, provider: &ProviderSetting, row: ConnectionRow) -> Result<AccessToken> {
        let Some(sealed_refresh) = row.refresh_token.clone() else {
            let reason = "the access token expired and the provider issued no refresh token";
            self.mark_needs_reauth(&row, reason).await?;
            return Err(Error::FailedPrecondition(format!(
                "connection {} needs re-authorization: {reason}",
                row.id
            )));
        };
        let refresh_token = sealing::open(
            &self.inner.key,
            &sealed_refresh,
            sealing::connection_slot(&row.id, sealing::REFRESH_TOKEN),
        )?;
        let request = flow::token_request(
            &provider.profile,
            &provider.client_id,
            &provider.client_secret,
            &Grant::RefreshToken {
                refresh_token: &refresh_token,
                redirect_uri: &row.redirect_uri,
            },
        );
        match self.try_exchange(&request).await {
            Ok(tokens) => {
                let now = store::now();
                let write = self.seal_tokens(
                    &row.id,
                    &tokens,
                    Some(sealed_refresh),
                    provider.profile.default_token_lifetime_secs,
                    now,
                );
                let scopes = tokens.scope.as_deref();
                if !connections::write_tokens(
                    &self.inner.db,
                    &row.id,
                    row.version,
                    write,
                    scopes,
                    now,
                )
                .await?
                {
                    return Err(Error::Aborted(format!(
                        "connection {} changed during the refresh; retry",
                        row.id
                    )));
                }
                tracing::info!(connection_id = %row.id, provider = %provider.id, rotated = tokens.refresh_token.is_some(), "token refreshed");
                Ok(AccessToken {
                    token: tokens.access_token,
                    token_type: tokens.token_type,
                    expires_at: flow::expiry::expires_at(
                        now,
                        tokens.expires_in,
                        provider.profile.default_token_lifetime_secs,
                    ),
                })
            }
            Err(ProviderFailure::Rejected {
                error: OAuthError::InvalidGrant,
                description,
            }) => {
                let reason = match description {
                    Some(d) => {
                        format!("the provider refused the refresh token (invalid_grant: {d})")
                    }
                    None => "the provider refused the refresh token (invalid_grant)".to_owned(),
                };
                self.mark_needs_reauth(&row, &reason).await?;
                Err(Error::FailedPrecondition(format!(
                    "connection {} needs re-authorization: {reason}",
                    row.id
                )))
            }
            Err(failure) => Err(Error::provider(&provider.id, "refresh", failure)),
        }
    }

    async fn mark_needs_reauth(&self, row: &ConnectionRow, reason: &str) -> Result<()> {
        if connections::set_status(
            &self.inner.db,
            &row.id,
            row.version,
            status::NEEDS_REAUTH,
            reason,
            store::now(),
        )
        .await?
        {
            log_status_change(row, status::NEEDS_REAUTH, reason);
        }
        Ok(())
    }

    fn refresh_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .inner
            .refresh_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        locks.entry(id.to_owned()).or_default().clone()
    }

    /// Drops the map entry once no other task holds the lock, so the map
    /// holds only connections being refreshed.
    fn release_refresh_lock(&self, id: &str, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut locks = self
            .inner
            .refresh_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        drop(lock);
        if locks.get(id).is_some_and(|l| Arc::strong_count(l) == 1) {
            locks.remove(id);
        }
    }
}
