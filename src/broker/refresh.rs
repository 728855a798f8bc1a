//! Refreshing a connection exactly once across replicas.
//!
//! Under the in-process lock, one task per process takes part:
//! 1. re-read the row; if another caller or replica refreshed meanwhile
//!    (its version moved), serve that token;
//! 2. otherwise take the row's refresh lease (owner + expiry, a conditional
//!    UPDATE that holds on SQLite and PostgreSQL alike) — the attempt is
//!    recorded before the provider is called;
//! 3. call the provider, retrying only failures that certainly left the
//!    refresh token unspent;
//! 4. write the new pair with a compare-and-swap on `version`, so a refresh
//!    that somehow outlived its lease can never overwrite newer tokens.
//!
//! Replicas that find the lease held poll the row until its version moves or
//! the lease lapses.

use std::time::{Duration, Instant};

use super::{Broker, Caller, connect::log_status_change, sealing, tokens::AccessToken};
use crate::{
    config::ProviderSetting,
    error::{Error, Result},
    flow::{self, Freshness, Grant, OAuthError, ProviderFailure, TokenSet},
    store::{
        self,
        connections::{self, ConnectionRow, status},
    },
    telemetry,
};

/// How often a waiting replica re-reads a row whose lease another holds.
const LEASE_POLL: Duration = Duration::from_millis(20);

impl Broker {
    /// Refreshes connection `id` unless someone else already did since the
    /// caller saw it at `seen_version` (`None`: not read); see the module comment.
    pub(super) async fn refresh_coordinated(
        &self,
        caller: &Caller,
        id: &str,
        seen_version: Option<i64>,
        min_valid_secs: i64,
        force: bool,
    ) -> Result<AccessToken> {
        let deadline = Instant::now() + self.inner.lease + Duration::from_secs(1);
        loop {
            let current = self.usable_connection(caller, id).await.inspect_err(|_| {
                self.inner.cache.remove(id);
            })?;
            let now = store::now();
            let still_valid = current.access_token_expires_at.is_some_and(|exp| exp > now);
            // Another caller or replica refreshed while this one waited: that
            // token is as fresh as the provider gives, so it serves this call
            // too (even a forced one, or one asking for more than the lifetime).
            let refreshed_meanwhile =
                seen_version.is_some_and(|v| v != current.version) && still_valid;
            if refreshed_meanwhile
                || flow::freshness(now, current.access_token_expires_at, min_valid_secs, force)
                    == Freshness::Fresh
            {
                return self.open_row(&current);
            }
            let lease_free = current.refresh_lease_until.is_none_or(|until| until <= now);
            if lease_free {
                let interrupted = current
                    .refresh_started_at
                    .filter(|_| current.refresh_lease_owner.is_some());
                let until = now + self.inner.lease.as_secs() as i64;
                if connections::acquire_lease(
                    &self.inner.db,
                    &current.id,
                    current.version,
                    &self.inner.owner,
                    now,
                    until,
                )
                .await?
                {
                    if let Some(at) = interrupted {
                        tracing::warn!(
                            connection_id = %current.id,
                            previous_owner = current.refresh_lease_owner.as_deref().unwrap_or_default(),
                            started_at = at,
                            "resuming after an interrupted refresh"
                        );
                    }
                    let id = current.id.clone();
                    let result = match self.provider_of_row(&current.provider) {
                        Ok(provider) => {
                            self.refresh_holding_lease(&provider, current, interrupted, force)
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    // Any early exit (a provider removed from config, a key that
                    // cannot open the token, a failed write) gives the lease
                    // back; after a successful write or a status change this
                    // finds nothing to release.
                    if result.is_err() {
                        let _ = connections::release_lease(&self.inner.db, &id, &self.inner.owner)
                            .await;
                    }
                    return result;
                }
                continue;
            }
            if Instant::now() >= deadline {
                if still_valid && !force {
                    return self.open_row(&current);
                }
                telemetry::metrics::refresh("contention");
                return Err(Error::Aborted(format!(
                    "connection {} is being refreshed by {} and it has not finished; retry",
                    current.id,
                    current
                        .refresh_lease_owner
                        .as_deref()
                        .unwrap_or("another replica")
                )));
            }
            tokio::time::sleep(LEASE_POLL).await;
        }
    }

    /// The provider call and the write, with this process holding the lease.
    async fn refresh_holding_lease(
        &self,
        provider: &ProviderSetting,
        row: ConnectionRow,
        interrupted_at: Option<i64>,
        force: bool,
    ) -> Result<AccessToken> {
        let Some(sealed_refresh) = row.refresh_token.clone() else {
            connections::release_lease(&self.inner.db, &row.id, &self.inner.owner).await?;
            // Without a refresh token the connection is only broken once its
            // access token is dead; until then a caller asking for more gets a no.
            if row
                .access_token_expires_at
                .is_some_and(|exp| exp > store::now())
            {
                if force {
                    return Err(Error::FailedPrecondition(format!(
                        "connection {} cannot be refreshed: the provider issued no refresh token",
                        row.id
                    )));
                }
                return self.open_row(&row);
            }
            let reason = "the access token expired and the provider issued no refresh token";
            telemetry::metrics::refresh("no_refresh_token");
            return self.give_up(&row, reason).await;
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
        let answer = self.exchange_with_retries(&provider.id, &request).await;
        match answer.map_err(|failure| failure.scrub(refresh_token.expose())) {
            Ok(tokens) => {
                telemetry::metrics::refresh("success");
                self.store_refreshed(provider, &row, sealed_refresh, tokens)
                    .await
            }
            Err(ProviderFailure::Rejected {
                error: OAuthError::InvalidGrant,
                description,
            }) => {
                let mut reason = match description {
                    Some(d) => {
                        format!("the provider refused the refresh token (invalid_grant: {d})")
                    }
                    None => "the provider refused the refresh token (invalid_grant)".to_owned(),
                };
                if let Some(at) = interrupted_at {
                    reason.push_str(&format!(
                        "; a refresh begun at {at} was interrupted before its answer was stored, so the rotated token was lost"
                    ));
                }
                telemetry::metrics::refresh("invalid_grant");
                self.give_up(&row, &reason).await
            }
            Err(failure) => {
                connections::release_lease(&self.inner.db, &row.id, &self.inner.owner).await?;
                let now = store::now();
                // A provider outage must not take down callers whose token
                // still works: serve it while it lives (not when forced: the
                // caller has seen it fail).
                let unavailable = matches!(
                    failure,
                    ProviderFailure::Unavailable { .. } | ProviderFailure::Malformed { .. }
                );
                if unavailable && !force && row.access_token_expires_at.is_some_and(|exp| exp > now)
                {
                    telemetry::metrics::refresh("served_stale");
                    tracing::warn!(connection_id = %row.id, provider = %provider.id, ?failure, "refresh failed; serving the still-valid token");
                    return self.open_row(&row);
                }
                telemetry::metrics::refresh("failed");
                Err(Error::provider(&provider.id, "refresh", failure))
            }
        }
    }

    /// Writes the refreshed pair (compare-and-swap on version) before the
    /// token is returned. A new refresh token replaces the old; none keeps it.
    async fn store_refreshed(
        &self,
        provider: &ProviderSetting,
        row: &ConnectionRow,
        sealed_refresh: String,
        tokens: TokenSet,
    ) -> Result<AccessToken> {
        let now = store::now();
        let lifetime = provider.profile.default_token_lifetime_secs;
        let write = self.seal_tokens(&row.id, &tokens, Some(sealed_refresh), lifetime, now);
        let expires_at = write.expires_at;
        if !connections::write_tokens(
            &self.inner.db,
            &row.id,
            row.version,
            write,
            tokens.scope.as_deref(),
            None,
            now,
        )
        .await?
        {
            // Someone changed the row while the provider answered (revoked it,
            // or refreshed after our lease lapsed): theirs is newer, ours is dropped.
            tracing::warn!(connection_id = %row.id, "connection changed during the refresh; the answer was discarded");
            let current = self
                .usable_connection(&Caller(row.caller.clone()), &row.id)
                .await?;
            return self.open_row(&current);
        }
        tracing::info!(
            connection_id = %row.id,
            provider = %provider.id,
            rotated = tokens.refresh_token.is_some(),
            expires_at,
            "token refreshed"
        );
        let token = AccessToken {
            token: tokens.access_token,
            token_type: tokens.token_type,
            expires_at,
        };
        self.cache_token(&row.id, &row.caller, &token);
        Ok(token)
    }

    /// Marks the connection NEEDS_REAUTH; if another replica meanwhile stored
    /// new tokens, serves those instead.
    async fn give_up(&self, row: &ConnectionRow, reason: &str) -> Result<AccessToken> {
        self.inner.cache.remove(&row.id);
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
            return Err(Error::FailedPrecondition(format!(
                "connection {} needs re-authorization: {reason}",
                row.id
            )));
        }
        let current = self
            .usable_connection(&Caller(row.caller.clone()), &row.id)
            .await?;
        self.open_row(&current)
    }

    /// One pass of the background refresher: renews active connections whose
    /// token expires within the window, so callers rarely wait. Returns how
    /// many it refreshed.
    pub async fn refresh_expiring(&self) -> Result<usize> {
        let window = self.inner.tokens.refresh_window.as_secs() as i64;
        let now = store::now();
        let rows = connections::expiring(&self.inner.db, now + window, 200).await?;
        let mut refreshed = 0;
        for row in rows {
            let Some(expires_at) = row.access_token_expires_at else {
                continue;
            };
            if !flow::expiry::due_for_proactive_refresh(now, expires_at, row.updated_at, window) {
                continue;
            }
            let min_valid = expires_at - now + 1;
            let id = row.id.clone();
            let result = self
                .refresh_shared(
                    &Caller(row.caller.clone()),
                    &id,
                    Some(row.version),
                    min_valid,
                    false,
                )
                .await;
            match result {
                Ok(token) if token.expires_at > expires_at => refreshed += 1,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(connection_id = %id, error = %e, "background refresh failed")
                }
            }
        }
        Ok(refreshed)
    }
}
