//! Refreshing a connection exactly once across replicas. `flow::refresh`
//! decides; this carries it out:
//! 1. read the row; if another caller or replica refreshed meanwhile (its
//!    version moved), serve that token;
//! 2. otherwise take the row's refresh lease (owner + expiry, a conditional
//!    UPDATE that holds on SQLite and PostgreSQL alike), renewed by a
//!    heartbeat while the provider call runs; the moment the request goes
//!    out is recorded first, so a holder that dies before it is resumed as a
//!    clean retry and one that dies after it is remembered as an interruption;
//! 3. call the provider, retrying only failures that certainly left the
//!    refresh token unspent;
//! 4. write the new pair with a compare-and-swap on `version`, so a refresh
//!    that somehow outlived its lease can never overwrite newer tokens.
//!
//! Callers that find the lease held poll the row until its version moves or
//! the lease lapses.

use std::{future::Future, sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;

use super::{
    gates::Gates, heartbeat, liveness::Liveness, openid::IdTokenCheck,
    provider_client::ProviderClient, registry::Providers, schedule::Schedule, status, vault::Vault,
};
use crate::{
    clock::SharedClock,
    domain::{Caller, ConnectionId, ConnectionStatus, ServedToken},
    error::{Error, Result, Step},
    flow::{
        ProviderFailure, TokenSet,
        refresh::{self, AfterFailure, Plan, RefreshAsk, WithoutRefreshToken},
    },
    oidc::IdTokenError,
    providers::ProviderSetting,
    store::connections::{self, LeaseClaim, TokenRow},
    telemetry,
};

/// How often a waiting caller re-reads a row whose lease another holds.
const LEASE_POLL: Duration = Duration::from_millis(20);

/// Carries out refreshes; holds no cache (the token service keeps that).
pub(crate) struct Refresher {
    pub(crate) db: DatabaseConnection,
    pub(crate) vault: Arc<Vault>,
    pub(crate) client: Arc<ProviderClient>,
    pub(crate) providers: Arc<Providers>,
    pub(crate) clock: SharedClock,
    /// How long a lease lasts unless its holder renews it.
    pub(crate) lease: Duration,
    /// Longest wait for another holder's lease before giving up.
    pub(crate) max_wait: Duration,
    /// This process's name on the leases it takes.
    pub(crate) owner: String,
    /// Tells a dead lease holder from a slow one.
    pub(crate) liveness: Arc<Liveness>,
    /// When written tokens come due for the background refresher.
    pub(crate) schedule: Schedule,
    /// Each provider's rate limit and 429 pause.
    pub(crate) gates: Arc<Gates>,
}

impl Refresher {
    /// Refreshes connection `id` unless someone else already did since the
    /// caller saw it; see the module comment.
    pub(crate) async fn refresh(
        &self,
        caller: &Caller,
        id: ConnectionId,
        ask: RefreshAsk,
    ) -> Result<ServedToken> {
        let deadline_ms = self.clock.now_millis() + self.max_wait.as_millis() as i64;
        loop {
            let mut row = self.usable_row(caller, id).await?;
            // The background refresher never waits: a live holder is already
            // renewing the connection.
            let waited_out = ask.background || self.clock.now_millis() >= deadline_ms;
            let now = self.clock.now();
            let mut plan = refresh::plan(now, row.snapshot, ask, waited_out);
            // Only a held lease that stands in the way is worth asking about.
            let mut dead_holder = None;
            if let (Plan::Wait | Plan::GiveUp, Some(holder), Some(until)) =
                (plan, &row.lease_owner, row.snapshot.lease_until)
                && self
                    .liveness
                    .holder_dead(holder, until, self.lease.as_secs() as i64)
                    .await
            {
                dead_holder = row.lease_owner.clone();
                row.snapshot.holder_dead = true;
                plan = refresh::plan(now, row.snapshot, ask, waited_out);
            }
            match plan {
                Plan::Serve => return self.open_row(&row),
                Plan::Wait => tokio::time::sleep(LEASE_POLL).await,
                Plan::GiveUp => {
                    telemetry::metrics::refresh("contention");
                    return Err(Error::RefreshInProgress {
                        id,
                        holder: Some(row.lease_owner.unwrap_or_else(|| "another replica".into())),
                    });
                }
                Plan::TakeLease { interrupted_at } => {
                    let claim = LeaseClaim {
                        version: row.version,
                        owner: &self.owner,
                        dead_holder: dead_holder.as_deref(),
                        now,
                        until: now + self.lease.as_secs() as i64,
                        interrupted_at,
                    };
                    if !connections::acquire_lease(&self.db, id, claim).await? {
                        // Someone else took it or wrote first: look again.
                        continue;
                    }
                    if let Some(at) = interrupted_at {
                        tracing::warn!(
                            connection_id = %id,
                            previous_owner = row.lease_owner.as_deref().unwrap_or_default(),
                            sent_at = at,
                            "resuming after an interrupted refresh"
                        );
                    }
                    let result = match self.providers.stored(&row.connection.provider) {
                        Ok(provider) => {
                            self.holding_lease(&provider, row, interrupted_at, ask)
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    // Any failure (the provider's, a provider removed from
                    // config, a key that cannot open the token, a failed
                    // write) gives the lease back; after a status change this
                    // finds nothing.
                    if result.is_err() {
                        let _ = connections::release_lease(&self.db, id, &self.owner).await;
                    }
                    return result;
                }
            }
        }
    }

    /// The caller's row, if its connection can serve tokens.
    async fn usable_row(&self, caller: &Caller, id: ConnectionId) -> Result<TokenRow> {
        let row = connections::find_tokens(&self.db, caller, id)
            .await?
            .ok_or(Error::ConnectionNotFound { id })?;
        if row.connection.status != ConnectionStatus::Active {
            return Err(status::unusable(
                id,
                &row.connection.provider,
                row.connection.status,
                row.connection.status_reason.as_deref(),
            ));
        }
        Ok(row)
    }

    /// The provider call and the write, with this process holding the lease.
    /// A token or status write ends the lease; an `Ok` without one gives it
    /// back here; the caller gives it back after any `Err`.
    async fn holding_lease(
        &self,
        provider: &ProviderSetting,
        row: TokenRow,
        interrupted_at: Option<i64>,
        ask: RefreshAsk,
    ) -> Result<ServedToken> {
        let force = ask.force;
        let id = row.connection.id;
        let Some(sealed_refresh) = row.refresh_token.clone() else {
            let now = self.clock.now();
            return match refresh::without_refresh_token(now, row.snapshot.expires_at, force) {
                WithoutRefreshToken::Serve => {
                    connections::release_lease(&self.db, id, &self.owner).await?;
                    self.open_row(&row)
                }
                WithoutRefreshToken::Refuse => Err(Error::NoRefreshToken {
                    id,
                    provider: provider.id.clone(),
                }),
                WithoutRefreshToken::NeedsReauth(reason) => {
                    telemetry::metrics::refresh("no_refresh_token");
                    self.give_up(&row, reason).await
                }
            };
        };
        let refresh_token = self.vault.open_refresh(id, &sealed_refresh)?;
        let gate = self.gates.of(&provider.id);
        let attempt = async {
            // The provider's rate limit, shared with the background
            // refresher (which took its slot before it claimed the row), and
            // its pause after a 429.
            if let Some(gate) = gate.as_deref() {
                let now_ms = self.clock.now_millis();
                let admitted = if ask.background {
                    gate.unpaused(now_ms)
                } else {
                    gate.admit(now_ms, self.max_wait).await
                };
                if let Err(held_back) = admitted {
                    return Ok(Err(held_back));
                }
            }
            // From here a crash may lose a rotation: say so on the row first.
            connections::mark_sent(&self.db, id, &self.owner, self.clock.now()).await?;
            let answer = self
                .client
                .refresh(provider, &refresh_token, &row.connection.redirect_uri)
                .await;
            // Still under the renewed lease: the rotated refresh token exists
            // only in memory until it is stored, and checking the id_token
            // may fetch the issuer's key set.
            let refused = match &answer {
                Ok(tokens) => self.refused_id_token(provider, &row, tokens).await,
                Err(_) => None,
            };
            Ok::<_, Error>(answer.map(|tokens| (tokens, refused)))
        };
        let answer = self.with_heartbeat(id, attempt).await?;
        if let (Err(failure), Some(gate)) = (&answer, &gate)
            && failure.http_status() == Some(429)
        {
            let retry_after = match failure {
                ProviderFailure::Unavailable { retry_after, .. } => *retry_after,
                _ => None,
            };
            gate.pause(self.clock.now_millis(), retry_after);
            tracing::warn!(provider = %provider.id, ?retry_after, "the provider answered 429: refreshes paused");
        }
        let failure = match answer {
            Ok((tokens, refused)) => {
                if let Some(refused) = refused {
                    telemetry::metrics::refresh("id_token_refused");
                    return self.give_up(&row, &refused).await;
                }
                telemetry::metrics::refresh("success");
                return self
                    .store_refreshed(provider, &row, sealed_refresh, tokens)
                    .await;
            }
            Err(failure) => failure,
        };
        let now = self.clock.now();
        match refresh::after_failure(
            now,
            row.snapshot.expires_at,
            force,
            &failure,
            interrupted_at,
        ) {
            AfterFailure::NeedsReauth(reason) => {
                telemetry::metrics::refresh("invalid_grant");
                self.give_up(&row, &reason).await
            }
            AfterFailure::ServeStale => {
                connections::release_lease(&self.db, id, &self.owner).await?;
                telemetry::metrics::refresh("served_stale");
                tracing::warn!(connection_id = %id, provider = %provider.id, ?failure, "refresh failed; serving the still-valid token");
                self.open_row(&row)
            }
            AfterFailure::Fail => {
                telemetry::metrics::refresh("failed");
                Err(Error::provider(&provider.id, Step::Refresh, failure))
            }
        }
    }

    /// Runs the provider call while renewing the lease every second, so a
    /// live holder keeps it through retries and a dead one blocks the
    /// connection for one lease at most (about two seconds on PostgreSQL,
    /// see `flow::liveness`).
    async fn with_heartbeat<T>(&self, id: ConnectionId, call: impl Future<Output = T>) -> T {
        heartbeat::while_renewing(heartbeat::RENEW_EVERY, call, || async {
            let until = self.clock.now() + self.lease.as_secs() as i64;
            match connections::renew_lease(&self.db, id, &self.owner, until).await {
                Ok(true) => {}
                // Taken over (this process was presumed dead): the version
                // check keeps a late answer from overwriting newer tokens.
                Ok(false) => {
                    tracing::warn!(connection_id = %id, "refresh lease lost while the provider answered")
                }
                Err(e) => {
                    tracing::warn!(connection_id = %id, error = %e, "renewing the refresh lease failed")
                }
            }
        })
        .await
    }

    /// Writes the refreshed pair (compare-and-swap on version) before the
    /// token is returned. A new refresh token replaces the old; none keeps it.
    async fn store_refreshed(
        &self,
        provider: &ProviderSetting,
        row: &TokenRow,
        sealed_refresh: crate::domain::Sealed,
        tokens: TokenSet,
    ) -> Result<ServedToken> {
        let id = row.connection.id;
        let now = self.clock.now();
        let lifetime = provider.profile.default_token_lifetime_secs;
        let mut write = self
            .vault
            .seal_tokens(id, &tokens, Some(sealed_refresh), lifetime, now);
        self.schedule.stamp(provider, now, &mut write);
        let expires_at = write.expires_at;
        let scopes = tokens
            .scope
            .as_deref()
            .map(crate::domain::Scopes::from_stored);
        if !connections::write_tokens(
            &self.db,
            id,
            row.version,
            write,
            connections::AlsoWrite {
                scopes: scopes.as_ref(),
                ..Default::default()
            },
            now,
        )
        .await?
        {
            // Someone changed the row while the provider answered (revoked it,
            // or refreshed after our lease lapsed): theirs is newer, ours is dropped.
            tracing::warn!(connection_id = %id, "connection changed during the refresh; the answer was discarded");
            let current = self.usable_row(&row.connection.caller, id).await?;
            return self.open_row(&current);
        }
        tracing::info!(
            connection_id = %id,
            provider = %provider.id,
            rotated = tokens.refresh_token.is_some(),
            expires_at,
            "token refreshed"
        );
        Ok(ServedToken {
            token: tokens.access_token,
            token_type: tokens.token_type,
            expires_at,
            provider: provider.id.clone(),
            // Written above when the provider named them; else unchanged.
            scopes: std::sync::Arc::new(scopes.unwrap_or_else(|| row.connection.scopes.clone())),
        })
    }

    /// Marks the connection NEEDS_REAUTH; if another replica meanwhile stored
    /// new tokens, serves those instead.
    /// Why a refreshed `id_token` (OIDC Core 12.2: same issuer, client and
    /// account) makes the new tokens unfit to serve as this connection's,
    /// if it does: a bad signature or claims, above all another `sub`. A key
    /// set that cannot be read, or lacks the token's key, proves nothing
    /// either way: the tokens came from the authenticated token endpoint and
    /// are kept.
    async fn refused_id_token(
        &self,
        provider: &ProviderSetting,
        row: &TokenRow,
        tokens: &TokenSet,
    ) -> Option<String> {
        let check = IdTokenCheck {
            nonce: None,
            subject: Some(&row.connection.provider_user_id),
            now: self.clock.now(),
        };
        match self.client.id_token_subject(provider, tokens, check).await {
            Ok(_) => None,
            Err(IdTokenError::Invalid(reason)) => {
                tracing::warn!(connection_id = %row.connection.id, provider = %provider.id, %reason, "refreshed id_token refused");
                Some(format!(
                    "the provider's refreshed id_token was refused: {reason}"
                ))
            }
            // Proves nothing about the account: a key set unreadable now, or
            // a key it does not show yet.
            Err(IdTokenError::UnknownKey(reason)) => {
                tracing::warn!(connection_id = %row.connection.id, provider = %provider.id, %reason, "refreshed id_token not checked");
                None
            }
            Err(IdTokenError::KeysUnavailable(failure)) => {
                tracing::warn!(connection_id = %row.connection.id, provider = %provider.id, ?failure, "refreshed id_token not checked: the key set is unavailable");
                None
            }
        }
    }

    async fn give_up(&self, row: &TokenRow, reason: &str) -> Result<ServedToken> {
        let connection = &row.connection;
        if connections::set_status(
            &self.db,
            connection.id,
            row.version,
            ConnectionStatus::NeedsReauth,
            reason,
            self.clock.now(),
        )
        .await?
        {
            status::log_change(connection, ConnectionStatus::NeedsReauth, reason);
            return Err(Error::NeedsReauth {
                id: connection.id,
                provider: connection.provider.clone(),
                reason: reason.to_owned(),
            });
        }
        let current = self.usable_row(&connection.caller, connection.id).await?;
        self.open_row(&current)
    }

    /// Opens a row's stored access token.
    fn open_row(&self, row: &TokenRow) -> Result<ServedToken> {
        let id = row.connection.id;
        let sealed = row.access_token.as_ref().ok_or_else(|| {
            Error::internal(anyhow::anyhow!("connection {id} has no access token"))
        })?;
        Ok(ServedToken {
            token: self.vault.open_access(id, sealed)?,
            token_type: row.token_type.clone(),
            expires_at: row.snapshot.expires_at.unwrap_or_default(),
            provider: row.connection.provider.clone(),
            scopes: std::sync::Arc::new(row.connection.scopes.clone()),
        })
    }
}
