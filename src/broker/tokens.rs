//! GetAccessToken: serve the cached or stored token while it lives long
//! enough, otherwise refresh it once for all concurrent callers.

use std::sync::Arc;

use opentelemetry::KeyValue;
use tracing::Instrument as _;

use super::{Broker, Caller, cache::Cached, sealing};
use crate::{
    error::{Error, Result},
    flow::{self, Freshness},
    secret::Secret,
    store::{
        self,
        connections::{self, ConnectionRow, status},
    },
    telemetry::metrics::metrics,
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
        // Hot path: no database, no decryption.
        if !force
            && let Some(hit) = self.inner.cache.get(id, &caller.0)
            && flow::freshness(store::now(), Some(hit.expires_at), min_valid_secs, false)
                == Freshness::Fresh
        {
            metrics()
                .cache_lookups
                .add(1, &[KeyValue::new("result", "hit")]);
            return Ok(AccessToken {
                token: hit.token,
                token_type: hit.token_type,
                expires_at: hit.expires_at,
            });
        }

        metrics()
            .cache_lookups
            .add(1, &[KeyValue::new("result", "miss")]);
        let row = match self.usable_connection(caller, id).await {
            Ok(row) => row,
            Err(e) => {
                self.inner.cache.remove(id);
                return Err(e);
            }
        };
        if flow::freshness(
            store::now(),
            row.access_token_expires_at,
            min_valid_secs,
            force,
        ) == Freshness::Fresh
        {
            return self.open_and_cache(&row);
        }

        // The refresh runs as its own task: if this caller goes away (deadline,
        // disconnect) after the provider rotated the refresh token, the new
        // pair is still stored instead of being lost with the dropped future.
        let broker = self.clone();
        // It stays in the caller's span, so the provider call joins its trace.
        let refresh = tokio::spawn(
            async move {
                let id = row.id.clone();
                broker
                    .with_refresh_lock(&id, broker.refresh_coordinated(&row, min_valid_secs, force))
                    .await
            }
            .in_current_span(),
        );
        refresh
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("refresh task failed: {e}")))?
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
        check_usable(row)
    }

    /// Opens the stored access token and remembers it for the hot path.
    pub(super) fn open_and_cache(&self, row: &ConnectionRow) -> Result<AccessToken> {
        let sealed = row.access_token.as_deref().ok_or_else(|| {
            Error::FailedPrecondition(format!("connection {} has no access token", row.id))
        })?;
        let token = AccessToken {
            token: sealing::open(
                &self.inner.key,
                sealed,
                sealing::connection_slot(&row.id, sealing::ACCESS_TOKEN),
            )?,
            token_type: row.token_type.clone(),
            expires_at: row.access_token_expires_at.unwrap_or_default(),
        };
        self.cache_token(&row.id, &row.caller, &token);
        Ok(token)
    }

    pub(super) fn cache_token(&self, id: &str, caller: &str, token: &AccessToken) {
        self.inner.cache.put(
            id,
            Cached::new(
                caller,
                token.token.clone(),
                token.token_type.clone(),
                token.expires_at,
            ),
        );
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

    /// Runs `f` under the connection's in-process refresh lock.
    pub(super) async fn with_refresh_lock<T>(&self, id: &str, f: impl Future<Output = T>) -> T {
        let lock = self.refresh_lock(id);
        let result = {
            let _guard = lock.lock().await;
            f.await
        };
        self.release_refresh_lock(id, lock);
        result
    }
}

/// A row that can serve tokens, or the error saying why not.
pub(super) fn check_usable(row: ConnectionRow) -> Result<ConnectionRow> {
    match row.status.as_str() {
        status::ACTIVE => Ok(row),
        status::NEEDS_REAUTH => Err(Error::FailedPrecondition(format!(
            "connection {} needs re-authorization: {}",
            row.id,
            row.status_reason
                .as_deref()
                .unwrap_or("the provider refused its tokens")
        ))),
        _ => Err(Error::FailedPrecondition(format!(
            "connection {} is revoked",
            row.id
        ))),
    }
}
