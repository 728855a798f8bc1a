//! Serving tokens: the cache, then one read of the serving columns, then a
//! refresh shared by every concurrent caller (see `flight`) and carried out
//! across replicas by `refresh`. A GetAccessToken moves down this file and
//! into those two, never back.

use std::{future::Future, sync::Arc, time::Duration};

use opentelemetry::KeyValue;
use sea_orm::DatabaseConnection;

use super::{cache::TokenCache, flight::Flights, refresh::Refresher, status, vault::Vault};
use crate::{
    clock::SharedClock,
    config::TokenSettings,
    domain::{Caller, ConnectionId, ConnectionStatus, ServedToken},
    error::{Error, Result},
    flow::{self, Freshness, refresh::RefreshAsk},
    store::connections,
    telemetry::{self, metrics::metrics},
};

/// Hands out valid access tokens.
pub(crate) struct TokenService {
    db: DatabaseConnection,
    vault: Arc<Vault>,
    cache: Arc<TokenCache>,
    flights: Arc<Flights<ServedToken>>,
    refresher: Arc<Refresher>,
    clock: SharedClock,
    settings: TokenSettings,
}

impl TokenService {
    /// Assembles the service around `refresher`.
    pub(crate) fn new(
        db: DatabaseConnection,
        vault: Arc<Vault>,
        refresher: Refresher,
        clock: SharedClock,
        settings: TokenSettings,
    ) -> Self {
        Self {
            db,
            vault,
            cache: Arc::new(TokenCache::new(settings.cache_ttl, settings.cache_capacity)),
            flights: Flights::new(),
            refresher: Arc::new(refresher),
            clock,
            settings,
        }
    }

    /// A token valid for at least `min_valid_secs`, refreshed when needed.
    /// A wait for a refresh lasts at most `wait` (what the caller's deadline
    /// leaves) or the configured bound; past it the call answers
    /// REFRESH_IN_PROGRESS while the refresh, detached, still completes.
    pub(crate) async fn access_token(
        &self,
        caller: &Caller,
        id: ConnectionId,
        min_valid_secs: i64,
        force: bool,
        wait: Option<Duration>,
    ) -> Result<ServedToken> {
        let now_ms = self.clock.now_millis();
        let now = now_ms.div_euclid(1000);
        // Hot path: no database, no decryption.
        if !force
            && let Some(hit) = self.cache.get(id, caller, now_ms)
            && flow::freshness(now, Some(hit.expires_at), min_valid_secs, false) == Freshness::Fresh
        {
            metrics()
                .cache_lookups
                .add(1, &[KeyValue::new("result", "hit")]);
            return Ok(hit);
        }
        metrics()
            .cache_lookups
            .add(1, &[KeyValue::new("result", "miss")]);
        // A refresh of this connection is already in flight here: join it
        // without touching the database.
        if let Some(follower) = self.flights.joinable(id, caller) {
            return self
                .bounded(caller, id, wait, force, follower.outcome())
                .await;
        }
        // The cached entry, even past its TTL, may already say the token is
        // too short: then go straight to the refresh, whose leader reads the row.
        let known_stale = self.cache.expiry_hint(id, caller).is_some_and(|exp| {
            flow::freshness(now, Some(exp), min_valid_secs, false) != Freshness::Fresh
        });
        if !force
            && !known_stale
            && let Some(token) = self
                .stored_token(caller, id, min_valid_secs, now_ms)
                .await?
        {
            return Ok(token);
        }
        let ask = RefreshAsk {
            min_valid_secs,
            force,
            seen_version: None,
            cooldown_secs: self.settings.refresh_cooldown.as_secs() as i64,
            background: false,
        };
        self.bounded(
            caller,
            id,
            wait,
            force,
            self.refresh_shared(caller, id, ask),
        )
        .await
    }

    /// Runs a wait for a refresh for at most the caller's `wait`, or (without
    /// a deadline) a second past the refresher's own bound, which then
    /// answers first and names the lease holder. When the refresh is not
    /// done by nine tenths of that, a stored token that is still valid is
    /// better than an error (unless the caller forced a refresh): it is
    /// served with its true expiry, as through a provider outage.
    async fn bounded(
        &self,
        caller: &Caller,
        id: ConnectionId,
        wait: Option<Duration>,
        force: bool,
        refresh: impl Future<Output = Result<ServedToken>>,
    ) -> Result<ServedToken> {
        let limit = wait.unwrap_or(self.settings.max_wait + Duration::from_secs(1));
        let (first, rest) = (limit.mul_f64(0.9), limit.mul_f64(0.1));
        match tokio::time::timeout(first, refresh).await {
            Ok(result) => result,
            Err(_) => {
                telemetry::metrics::refresh("deadline");
                if !force {
                    let still_valid = async {
                        let now_ms = self.clock.now_millis();
                        self.stored_token(caller, id, 1, now_ms).await
                    };
                    if let Ok(Ok(Some(token))) = tokio::time::timeout(rest, still_valid).await {
                        return Ok(token);
                    }
                }
                Err(Error::RefreshInProgress { id, holder: None })
            }
        }
    }

    /// The stored token if it stays valid for `min_valid_secs`; errors for an
    /// unknown, revoked or broken connection.
    async fn stored_token(
        &self,
        caller: &Caller,
        id: ConnectionId,
        min_valid_secs: i64,
        now_ms: i64,
    ) -> Result<Option<ServedToken>> {
        let now = now_ms.div_euclid(1000);
        let Some(row) = connections::find_serving(&self.db, caller, id).await? else {
            self.cache.remove(id);
            return Err(Error::ConnectionNotFound { id });
        };
        if row.status != ConnectionStatus::Active {
            self.cache.remove(id);
            return Err(status::unusable(
                id,
                &row.provider,
                row.status,
                row.status_reason.as_deref(),
            ));
        }
        if flow::freshness(now, row.access_token_expires_at, min_valid_secs, false)
            != Freshness::Fresh
        {
            return Ok(None);
        }
        let Some(sealed) = row.access_token else {
            return Ok(None);
        };
        let token = ServedToken {
            token: self.vault.open_access(id, &sealed)?,
            token_type: row.token_type,
            expires_at: row.access_token_expires_at.unwrap_or_default(),
            provider: row.provider,
            scopes: std::sync::Arc::new(row.scopes),
        };
        self.cache.put(id, caller, token.clone(), now_ms);
        Ok(Some(token))
    }

    /// Refreshes connection `id` once for every concurrent call of `caller`
    /// in this process, and keeps the cache in step with the outcome.
    pub(crate) async fn refresh_shared(
        &self,
        caller: &Caller,
        id: ConnectionId,
        ask: RefreshAsk,
    ) -> Result<ServedToken> {
        let (refresher, cache, clock, owner) = (
            self.refresher.clone(),
            self.cache.clone(),
            self.clock.clone(),
            caller.clone(),
        );
        let work = async move {
            let result = refresher.refresh(&owner, id, ask).await;
            match &result {
                Ok(token) => cache.put(id, &owner, token.clone(), clock.now_millis()),
                Err(
                    Error::ConnectionNotFound { .. }
                    | Error::NeedsReauth { .. }
                    | Error::Revoked { .. },
                ) => cache.remove(id),
                Err(_) => {}
            }
            result
        };
        self.flights.run(id, caller, work).await
    }

    /// Forgets what the cache holds for `id`: its tokens or status changed here.
    pub(crate) fn forget(&self, id: ConnectionId) {
        self.cache.remove(id);
    }
}
