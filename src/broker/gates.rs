//! How hard this process presses each provider with refreshes: a rate limit
//! shared by background and on-demand refreshes (the configured rate is for
//! the whole cluster; each replica takes its share, as many as are alive),
//! a cap on background refreshes in flight, and a pause for the provider as
//! a whole after it answers 429.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::Semaphore;

use crate::{domain::ProviderId, flow::ProviderFailure, providers::ProviderSetting};

/// The pause after a 429 that named no Retry-After.
const DEFAULT_BACKOFF_SECS: u64 = 5;
/// The longest pause a provider's Retry-After can impose.
const MAX_BACKOFF_SECS: u64 = 300;

/// One provider's gate.
pub(crate) struct Gate {
    /// Background refreshes in flight, at most the provider's concurrency.
    pub(crate) slots: Arc<Semaphore>,
    /// The provider's concurrency.
    concurrency: usize,
    /// Background refreshes claimed and not yet ended (waiting for their
    /// rate slot, or for a concurrency slot, or in flight).
    claimed: Arc<AtomicUsize>,
    /// Cluster-wide requests per second, if limited.
    rate_per_sec: Option<f64>,
    /// Replicas alive, as last counted (at least 1).
    replicas: Arc<AtomicU64>,
    /// The earliest instant (ms) the next request may go out.
    next_free_ms: Mutex<i64>,
    /// Until when (ms) the provider asked to be left alone.
    backoff_until_ms: AtomicI64,
}

impl Gate {
    fn new(provider: &ProviderSetting, replicas: Arc<AtomicU64>) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(provider.refresh.concurrency)),
            concurrency: provider.refresh.concurrency,
            claimed: Arc::new(AtomicUsize::new(0)),
            rate_per_sec: provider.refresh.rate_per_sec,
            replicas,
            next_free_ms: Mutex::new(0),
            backoff_until_ms: AtomicI64::new(0),
        }
    }

    /// How many more background refreshes may be claimed: two rounds of
    /// the concurrency in all.
    pub(crate) fn claimable(&self) -> usize {
        (2 * self.concurrency).saturating_sub(self.claimed.load(Ordering::Relaxed))
    }

    /// Counts one claimed refresh until the returned guard is dropped.
    pub(crate) fn claim(self: &Arc<Self>) -> Claimed {
        self.claimed.fetch_add(1, Ordering::Relaxed);
        Claimed { gate: self.clone() }
    }

    /// Milliseconds between two of this replica's requests, if limited.
    fn spacing_ms(&self) -> Option<f64> {
        let replicas = self.replicas.load(Ordering::Relaxed).max(1) as f64;
        self.rate_per_sec.map(|rate| 1000.0 * replicas / rate)
    }

    /// How many requests the rate allows to start within `horizon` of `now_ms`.
    pub(crate) fn room(&self, now_ms: i64, horizon: Duration) -> usize {
        let Some(spacing) = self.spacing_ms() else {
            return usize::MAX;
        };
        let next = (*self.next_free_ms.lock().unwrap_or_else(|e| e.into_inner())).max(now_ms);
        let free_ms = (now_ms + horizon.as_millis() as i64 - next).max(0) as f64;
        (free_ms / spacing).ceil() as usize
    }

    /// Takes the next free send slot, unless it is further than `max_wait`
    /// away; returns how long to wait for it.
    pub(crate) fn reserve(&self, now_ms: i64, max_wait: Duration) -> Option<Duration> {
        let Some(spacing) = self.spacing_ms() else {
            return Some(Duration::ZERO);
        };
        let mut next = self.next_free_ms.lock().unwrap_or_else(|e| e.into_inner());
        let slot = (*next).max(now_ms);
        let wait = Duration::from_millis((slot - now_ms) as u64);
        if wait > max_wait {
            return None;
        }
        *next = slot + spacing.round().max(1.0) as i64;
        Some(wait)
    }

    /// Seconds left of a pause the provider asked for, if one is on.
    pub(crate) fn paused(&self, now_ms: i64) -> Option<u64> {
        let until = self.backoff_until_ms.load(Ordering::Relaxed);
        (until > now_ms).then(|| ((until - now_ms) as u64).div_ceil(1000))
    }

    /// Pauses the provider after a 429 (for its Retry-After, within bounds).
    pub(crate) fn pause(&self, now_ms: i64, retry_after: Option<u64>) {
        let secs = retry_after
            .unwrap_or(DEFAULT_BACKOFF_SECS)
            .clamp(1, MAX_BACKOFF_SECS);
        self.backoff_until_ms
            .fetch_max(now_ms + secs as i64 * 1000, Ordering::Relaxed);
    }

    /// Fails like an unavailable provider while a 429 pause is on (for a
    /// request whose rate slot was taken before the pause began).
    pub(crate) fn unpaused(&self, now_ms: i64) -> Result<(), ProviderFailure> {
        match self.paused(now_ms) {
            Some(secs) => Err(not_sent(
                "not sent: the provider asked to be left alone (429)",
                secs,
            )),
            None => Ok(()),
        }
    }

    /// Admits one refresh request at `now_ms`: waits for its rate slot, or
    /// fails like an unavailable provider (never sent, so safe to retry)
    /// while paused or when no slot frees within `max_wait`.
    pub(crate) async fn admit(
        &self,
        now_ms: i64,
        max_wait: Duration,
    ) -> Result<(), ProviderFailure> {
        self.unpaused(now_ms)?;
        match self.reserve(now_ms, max_wait) {
            Some(wait) if wait.is_zero() => Ok(()),
            Some(wait) => {
                tokio::time::sleep(wait).await;
                Ok(())
            }
            None => Err(not_sent(
                "not sent: the provider's refresh rate limit is used up",
                max_wait.as_secs().max(1),
            )),
        }
    }
}

/// A claimed background refresh, counted while it lives.
pub(crate) struct Claimed {
    /// Its provider's gate.
    pub(crate) gate: Arc<Gate>,
}

impl Drop for Claimed {
    fn drop(&mut self) {
        self.gate.claimed.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A refresh held back here, reported as the provider being unavailable.
fn not_sent(reason: &str, retry_after: u64) -> ProviderFailure {
    ProviderFailure::Unavailable {
        http_status: None,
        reason: reason.to_owned(),
        retry_after: Some(retry_after),
        retry_safe: true,
    }
}

/// Every configured provider's gate.
pub(crate) struct Gates(BTreeMap<ProviderId, Arc<Gate>>);

impl Gates {
    /// A gate per provider; `replicas` is kept current by the replica heartbeat.
    pub(crate) fn new<'a>(
        providers: impl IntoIterator<Item = &'a Arc<ProviderSetting>>,
        replicas: Arc<AtomicU64>,
    ) -> Self {
        Self(
            providers
                .into_iter()
                .map(|p| (p.id.clone(), Arc::new(Gate::new(p, replicas.clone()))))
                .collect(),
        )
    }

    /// The gate of `provider` (configured providers only).
    pub(crate) fn of(&self, provider: &ProviderId) -> Option<Arc<Gate>> {
        self.0.get(provider).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(rate: Option<f64>, replicas: u64) -> Gate {
        Gate {
            slots: Arc::new(Semaphore::new(4)),
            concurrency: 4,
            claimed: Arc::new(AtomicUsize::new(0)),
            rate_per_sec: rate,
            replicas: Arc::new(AtomicU64::new(replicas)),
            next_free_ms: Mutex::new(0),
            backoff_until_ms: AtomicI64::new(0),
        }
    }

    #[test]
    fn the_rate_spaces_requests_and_is_shared_by_replicas() {
        let one = gate(Some(10.0), 1);
        assert_eq!(one.room(1_000, Duration::from_secs(1)), 10);
        assert_eq!(
            one.reserve(1_000, Duration::from_secs(1)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            one.reserve(1_000, Duration::from_secs(1)),
            Some(Duration::from_millis(100))
        );
        assert_eq!(one.room(1_000, Duration::from_secs(1)), 8);
        // Two replicas alive: each takes half the rate.
        let half = gate(Some(10.0), 2);
        assert_eq!(half.room(1_000, Duration::from_secs(1)), 5);
        half.reserve(1_000, Duration::ZERO);
        assert_eq!(half.reserve(1_000, Duration::from_millis(100)), None);
        assert_eq!(
            half.reserve(1_000, Duration::from_millis(200)),
            Some(Duration::from_millis(200))
        );
    }

    #[test]
    fn no_limit_means_always_room() {
        let free = gate(None, 3);
        assert_eq!(free.room(0, Duration::from_secs(1)), usize::MAX);
        assert_eq!(free.reserve(0, Duration::ZERO), Some(Duration::ZERO));
    }

    #[tokio::test]
    async fn a_429_pauses_the_provider() {
        let g = gate(None, 1);
        g.pause(10_000, Some(3));
        assert_eq!(g.paused(10_000), Some(3));
        assert_eq!(g.paused(12_500), Some(1));
        assert_eq!(g.paused(13_000), None);
        let refused = g
            .admit(11_000, Duration::from_secs(1))
            .await
            .expect_err("paused");
        assert!(refused.is_retry_safe());
        // Without Retry-After the default pause applies; an absurd one is capped.
        g.pause(20_000, None);
        assert_eq!(g.paused(20_000), Some(DEFAULT_BACKOFF_SECS));
        g.pause(20_000, Some(86_400));
        assert_eq!(g.paused(20_000), Some(MAX_BACKOFF_SECS));
    }
}
