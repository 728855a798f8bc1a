//! Single-flight refreshes within a process: the first caller that needs a
//! connection refreshed leads, every concurrent caller follows and receives
//! the leader's result the moment it exists — no queue of waiters re-reading
//! the database one after another. Across processes the row's lease takes
//! over (see `refresh`).

use tokio::sync::watch;
use tracing::Instrument as _;

use super::{Broker, Caller, tokens::AccessToken};
use crate::error::{Error, Result};

/// A refresh's outcome as followers see it.
pub(super) type Outcome = Option<Result<AccessToken, Error>>;

/// A refresh in flight: its caller (only that caller may follow) and outcome.
pub(super) type Flight = (String, watch::Receiver<Outcome>);

impl Broker {
    /// The refresh of `id` in flight for `caller`, if any.
    pub(super) fn flight_of(&self, caller: &Caller, id: &str) -> Option<watch::Receiver<Outcome>> {
        let flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        flights
            .get(id)
            .filter(|(owner, _)| *owner == caller.0)
            .map(|(_, rx)| rx.clone())
    }

    /// Waits for a flight's outcome.
    pub(super) async fn follow(mut rx: watch::Receiver<Outcome>) -> Result<AccessToken> {
        match rx.wait_for(Option::is_some).await {
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
        }
    }

    /// Refreshes connection `id` once for every concurrent caller in this
    /// process. The refresh runs as its own task in the caller's span: if the
    /// caller goes away after the provider rotated the token, the new pair is
    /// still stored.
    pub(super) async fn refresh_shared(
        &self,
        caller: &Caller,
        id: &str,
        seen_version: Option<i64>,
        min_valid_secs: i64,
        force: bool,
    ) -> Result<AccessToken> {
        let tx = {
            let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
            match flights.get(id) {
                Some((owner, rx)) if *owner == caller.0 => Err(rx.clone()),
                // Another caller's flight on this id cannot be this caller's
                // connection: refresh_coordinated will say NOT_FOUND.
                Some(_) => Ok(None),
                None => {
                    let (tx, rx) = watch::channel(None);
                    flights.insert(id.to_owned(), (caller.0.clone(), rx.clone()));
                    Ok(Some((tx, rx)))
                }
            }
        };
        let tx = match tx {
            Err(rx) => return Self::follow(rx).await,
            Ok(tx) => tx,
        };
        let (broker, caller, id) = (self.clone(), caller.clone(), id.to_owned());
        let task = tokio::spawn(
            async move {
                // Removes this flight from the map however the task ends, a
                // panic included, so a dead flight never captures later callers.
                let entry = tx.as_ref().map(|(_, rx)| FlightEntry {
                    broker: broker.clone(),
                    id: id.clone(),
                    rx: rx.clone(),
                });
                let result = broker
                    .refresh_coordinated(&caller, &id, seen_version, min_valid_secs, force)
                    .await;
                // Leave the map first: a caller arriving from now on reads the
                // stored (new) token instead of following.
                drop(entry);
                if let Some((tx, _)) = tx {
                    let shared = match &result {
                        Ok(token) => Ok(token.clone()),
                        Err(e) => Err(e.duplicate()),
                    };
                    let _ = tx.send(Some(shared));
                }
                result
            }
            .in_current_span(),
        );
        task.await
            .map_err(|e| Error::Internal(anyhow::anyhow!("refresh task failed: {e}")))?
    }
}

/// A flight's place in the map; dropping it removes that flight (and only
/// that one: a newer flight of the same connection stays).
struct FlightEntry {
    broker: Broker,
    id: String,
    rx: watch::Receiver<Outcome>,
}

impl Drop for FlightEntry {
    fn drop(&mut self) {
        let mut flights = self
            .broker
            .inner
            .flights
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if flights
            .get(&self.id)
            .is_some_and(|(_, rx)| rx.same_channel(&self.rx))
        {
            flights.remove(&self.id);
        }
    }
}
