//! GetAccessToken: serve the cached or stored token while it lives long
//! enough, otherwise refresh it once for all concurrent callers.

use opentelemetry::KeyValue;

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
#[derive(Clone)]
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
            return Ok(hit);
        }

        metrics()
            .cache_lookups
            .add(1, &[KeyValue::new("result", "miss")]);
        // A refresh of this connection is already in flight here: join it
        // without touching the database.
        if let Some(flight) = self.flight_of(caller, id) {
            return Self::follow(flight).await;
        }
        // The cached entry, even past its TTL, may already say the token is
        // too short: then go straight to the refresh, whose leader reads the row.
        let known_stale = self
            .inner
            .cache
            .expiry_hint(id, &caller.0)
            .is_some_and(|exp| {
                flow::freshness(store::now(), Some(exp), min_valid_secs, false) != Freshness::Fresh
            });
        // Otherwise the six serving columns are enough when the stored token
        // lives long enough.
        if !force
            && !known_stale
            && let Some(token) = self.stored_token(caller, id, min_valid_secs).await?
        {
            return Ok(token);
        }
        self.refresh_shared(caller, id, None, min_valid_secs, force)
            .await
    }

    /// The stored token if it stays valid for `min_valid_secs`; errors for an
    /// unknown, revoked or broken connection.
    async fn stored_token(
        &self,
        caller: &Caller,
        id: &str,
        min_valid_secs: i64,
    ) -> Result<Option<AccessToken>> {
        let Some(row) = connections::find_serving(&self.inner.db, &caller.0, id).await? else {
            self.inner.cache.remove(id);
            return Err(Error::NotFound(format!("connection {id} not found")));
        };
        if row.status != status::ACTIVE {
            self.inner.cache.remove(id);
            return Err(status_error(id, &row.status, row.status_reason.as_deref()));
        }
        if flow::freshness(
            store::now(),
            row.access_token_expires_at,
            min_valid_secs,
            false,
        ) != Freshness::Fresh
        {
            return Ok(None);
        }
        let Some(sealed) = row.access_token.as_deref() else {
            return Ok(None);
        };
        let token = self.open_and_cache(
            id,
            &caller.0,
            sealed,
            row.token_type,
            row.access_token_expires_at,
        )?;
        Ok(Some(token))
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

    /// Opens a row's stored access token and remembers it for the hot path.
    pub(super) fn open_row(&self, row: &ConnectionRow) -> Result<AccessToken> {
        let sealed = row.access_token.as_deref().ok_or_else(|| {
            Error::FailedPrecondition(format!("connection {} has no access token", row.id))
        })?;
        self.open_and_cache(
            &row.id,
            &row.caller,
            sealed,
            row.token_type.clone(),
            row.access_token_expires_at,
        )
    }

    /// Opens a sealed access token of connection `id` and caches it.
    fn open_and_cache(
        &self,
        id: &str,
        caller: &str,
        sealed: &str,
        token_type: String,
        expires_at: Option<i64>,
    ) -> Result<AccessToken> {
        let token = AccessToken {
            token: sealing::open(
                &self.inner.key,
                sealed,
                sealing::connection_slot(id, sealing::ACCESS_TOKEN),
            )?,
            token_type,
            expires_at: expires_at.unwrap_or_default(),
        };
        self.cache_token(id, caller, &token);
        Ok(token)
    }

    pub(super) fn cache_token(&self, id: &str, caller: &str, token: &AccessToken) {
        self.inner.cache.put(id, Cached::new(caller, token.clone()));
    }
}

/// A row that can serve tokens, or the error saying why not.
pub(super) fn check_usable(row: ConnectionRow) -> Result<ConnectionRow> {
    if row.status == status::ACTIVE {
        return Ok(row);
    }
    Err(status_error(
        &row.id,
        &row.status,
        row.status_reason.as_deref(),
    ))
}

/// The error for a connection in a status that serves no tokens.
fn status_error(id: &str, status: &str, reason: Option<&str>) -> Error {
    if status == status::NEEDS_REAUTH {
        Error::FailedPrecondition(format!(
            "connection {id} needs re-authorization: {}",
            reason.unwrap_or("the provider refused its tokens")
        ))
    } else {
        Error::FailedPrecondition(format!("connection {id} is revoked"))
    }
}
