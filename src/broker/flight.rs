//! Single flight within a process: the first caller that needs a
//! connection's work done leads, every concurrent caller of the same caller
//! follows and receives the leader's result the moment it exists — no queue
//! of waiters re-reading the database one after another. The work runs as
//! its own task, so a leader that goes away cannot cancel it halfway.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
};

use tokio::sync::watch;
use tracing::Instrument as _;

use crate::{
    domain::{Caller, ConnectionId},
    error::{Error, Result},
};

type Outcome<T> = Option<Result<T>>;
/// A flight's owner and the channel its result arrives on.
type Slot<T> = (Caller, watch::Receiver<Outcome<T>>);

/// Flights in progress by connection id, each with the caller it belongs to
/// (only that caller may follow it).
pub(crate) struct Flights<T> {
    map: Mutex<HashMap<ConnectionId, Slot<T>>>,
}

impl<T: Clone + Send + Sync + 'static> Flights<T> {
    /// No flights.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            map: Mutex::new(HashMap::new()),
        })
    }

    /// Joins the flight of `id` for `caller`, if one is in progress.
    pub(crate) fn joinable(&self, id: ConnectionId, caller: &Caller) -> Option<Follower<T>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&id)
            .filter(|(owner, _)| owner == caller)
            .map(|(_, rx)| Follower(rx.clone()))
    }

    /// Runs `work` for `id` once for every concurrent call of `caller`: the
    /// first call runs it, later ones wait for its result.
    pub(crate) async fn run<F>(
        self: &Arc<Self>,
        id: ConnectionId,
        caller: &Caller,
        work: F,
    ) -> Result<T>
    where
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let lead = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(&id) {
                Some((owner, rx)) if owner == caller => Err(Follower(rx.clone())),
                // Another caller's flight on this id cannot be this caller's
                // connection: the work runs unshared and says NOT_FOUND.
                Some(_) => Ok(None),
                None => {
                    let (tx, rx) = watch::channel(None);
                    map.insert(id, (caller.clone(), rx.clone()));
                    Ok(Some((tx, rx)))
                }
            }
        };
        let lead = match lead {
            Err(follower) => return follower.outcome().await,
            Ok(lead) => lead,
        };
        let flights = self.clone();
        let task = tokio::spawn(
            async move {
                // Removes this flight from the map however the task ends, a
                // panic included, so a dead flight never captures later callers.
                let entry = lead.as_ref().map(|(_, rx)| Entry {
                    flights: flights.clone(),
                    id,
                    rx: rx.clone(),
                });
                let result = work.await;
                // Leave the map first: a caller arriving from now on reads the
                // stored result instead of following.
                drop(entry);
                if let Some((tx, _)) = lead {
                    let _ = tx.send(Some(result.clone()));
                }
                result
            }
            .in_current_span(),
        );
        task.await
            .map_err(|e| Error::internal(anyhow::anyhow!("flight task failed: {e}")))?
    }
}

/// A caller waiting for another's flight.
pub(crate) struct Follower<T>(watch::Receiver<Outcome<T>>);

impl<T: Clone> Follower<T> {
    /// The flight's result.
    pub(crate) async fn outcome(mut self) -> Result<T> {
        match self.0.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or_else(|| {
                Err(Error::internal(anyhow::anyhow!(
                    "flight ended without a result"
                )))
            }),
            Err(_) => Err(Error::internal(anyhow::anyhow!("flight was dropped"))),
        }
    }
}

/// A flight's place in the map; dropping it removes that flight (and only
/// that one: a newer flight of the same connection stays).
struct Entry<T> {
    flights: Arc<Flights<T>>,
    id: ConnectionId,
    rx: watch::Receiver<Outcome<T>>,
}

impl<T> Drop for Entry<T> {
    fn drop(&mut self) {
        let mut map = self.flights.map.lock().unwrap_or_else(|p| p.into_inner());
        if map
            .get(&self.id)
            .is_some_and(|(_, rx)| rx.same_channel(&self.rx))
        {
            map.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_calls_share_one_run() {
        let flights = Flights::<u32>::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let (id, caller) = (ConnectionId::generate(), Caller::trusted("c"));
        let (release, gate) = tokio::sync::oneshot::channel::<()>();
        let first = {
            let (flights, runs, caller) = (flights.clone(), runs.clone(), caller.clone());
            tokio::spawn(async move {
                flights
                    .run(id, &caller, async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        let _ = gate.await;
                        Ok(7)
                    })
                    .await
            })
        };
        while flights.joinable(id, &caller).is_none() {
            tokio::task::yield_now().await;
        }
        let follower = flights.joinable(id, &caller).expect("in flight");
        assert!(flights.joinable(id, &Caller::trusted("other")).is_none());
        let second = flights.run(id, &caller, async { Ok(8) });
        let _ = release.send(());
        assert_eq!(second.await.expect("shared"), 7);
        assert_eq!(follower.outcome().await.expect("shared"), 7);
        assert_eq!(first.await.expect("join").expect("ok"), 7);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(
            flights.joinable(id, &caller).is_none(),
            "the flight left the map"
        );
    }
}
