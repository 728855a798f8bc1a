//! Single-flight refreshes within a process: the first caller that needs a
//! connection refreshed leads, every concurrent caller follows and receives
//! the leader's result the moment it exists — no queue of waiters re-reading
//! the database one after another. Across processes the row's lease takes
//! over (see `refresh`).

use tokio::sync::watch;
use tracing::Instrument as _;

use super::{Broker, tokens::AccessToken};
use crate::{
    error::{Error, Result},
    store::connections::ConnectionRow,
};

/// A refresh's outcome as followers see it.
type Outcome = Option<Result<AccessToken, Error>>;

/// What a caller does about a refresh in flight.
enum Role {
    Lead(watch::Sender<Outcome>),
    Follow(watch::Receiver<Outcome>),
}

impl Broker {
    /// Refreshes `row` once for every concurrent caller in this process. The
    /// refresh runs as its own task in the caller's span: if the caller goes
    /// away after the provider rotated the token, the new pair is still stored.
    pub(super) async fn refresh_shared(
        &self,
        row: ConnectionRow,
        min_valid_secs: i64,
        force: bool,
    ) -> Result<AccessToken> {
        let id = row.id.clone();
        let role = {
            let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
            match flights.get(&id) {
                Some(rx) => Role::Follow(rx.clone()),
                None => {
                    let (tx, rx) = watch::channel(None);
                    flights.insert(id.clone(), rx);
                    Role::Lead(tx)
                }
            }
        };
        match role {
            Role::Follow(mut rx) => match rx.wait_for(Option::is_some).await {
                Ok(outcome) => match outcome.as_ref() {
                    Some(Ok(token)) => Ok(token.clone()),
                    Some(Err(e)) => Err(e.duplicate()),
                    None => Err(Error::Internal(anyhow::anyhow!(
                        "refresh flight ended without a result"
                    ))),
                },
                Err(_) => Err(Error::Internal(anyhow::anyhow!(
                    "refresh flight was dropped"
                ))),
            },
            Role::Lead(tx) => {
                let broker = self.clone();
                let task = tokio::spawn(
                    async move {
                        let result = broker
                            .refresh_coordinated(&row, min_valid_secs, force)
                            .await;
                        // Leave the map first: a caller arriving from now on
                        // reads the stored (new) token instead of following.
                        broker
                            .inner
                            .flights
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&row.id);
                        let shared = match &result {
                            Ok(token) => Ok(token.clone()),
                            Err(e) => Err(e.duplicate()),
                        };
                        let _ = tx.send(Some(shared));
                        result
                    }
                    .in_current_span(),
                );
                task.await
                    .map_err(|e| Error::Internal(anyhow::anyhow!("refresh task failed: {e}")))?
            }
        }
    }
}
