//! The background refresher: renews connections before callers need them.
//! Every pass, for each provider not paused by a 429, it claims as many due
//! connections as it has free background slots and rate slots for (replicas
//! claim disjoint rows, see `store::schedule`), takes their rate slots at
//! once, and refreshes them concurrently through the same single flight and
//! lease as a caller's refresh, so a connection is never renewed twice.

use std::{sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, OwnedSemaphorePermit};

use super::{gates::Gates, registry::Providers, schedule::Schedule, tokens::TokenService};
use crate::{
    clock::SharedClock,
    error::Error,
    flow::{refresh::RefreshAsk, schedule::is_due},
    providers::ProviderSetting,
    store::schedule::{self as queue, Due},
    telemetry::metrics,
};

/// Most connections one provider's pass claims.
const BATCH: usize = 256;

/// Renews due connections; one per process.
pub(crate) struct Proactive {
    pub(crate) db: DatabaseConnection,
    pub(crate) tokens: Arc<TokenService>,
    pub(crate) providers: Arc<Providers>,
    pub(crate) gates: Arc<Gates>,
    pub(crate) schedule: Schedule,
    pub(crate) clock: SharedClock,
    /// How long a claim keeps other replicas off a connection: if this
    /// process dies or its refresh fails, the connection comes due again then.
    pub(crate) claim: Duration,
    /// Signalled when a refresh ends: its slot can take the next due one.
    pub(crate) wake: Arc<Notify>,
}

impl Proactive {
    /// One pass over every provider; returns how many refreshes it started
    /// and whether any provider had more due than it could take now.
    pub(crate) async fn pass(self: &Arc<Self>, horizon: Duration) -> Result<(usize, bool), Error> {
        let mut started = 0;
        let mut more = false;
        for provider in self.providers.all() {
            let (n, full) = self.provider_pass(provider, horizon).await?;
            started += n;
            more |= full;
        }
        Ok((started, more))
    }

    async fn provider_pass(
        self: &Arc<Self>,
        provider: &Arc<ProviderSetting>,
        horizon: Duration,
    ) -> Result<(usize, bool), Error> {
        let Some(gate) = self.gates.of(&provider.id) else {
            return Ok((0, false));
        };
        let now_ms = self.clock.now_millis();
        if gate.paused(now_ms).is_some() {
            return Ok((0, false));
        }
        // Claimed work waits for its rate slot without a concurrency slot
        // (which it takes only to call the provider), so a wait for the rate
        // never idles the concurrency; at most two rounds of it are claimed.
        let room = gate.claimable().min(gate.room(now_ms, horizon)).min(BATCH);
        if room == 0 {
            return Ok((0, true));
        }
        let now = now_ms.div_euclid(1000);
        let claimed = queue::claim_due(
            &self.db,
            &provider.id,
            now,
            now + self.claim.as_secs() as i64,
            room as u64,
        )
        .await?;
        let full = claimed.len() == room;
        let count = claimed.len();
        for due in claimed {
            metrics::refresh_lateness(provider.id.as_str(), (now - due.due_at).max(0));
            // The claim sized itself to the rate: this slot is within the horizon.
            let wait = gate.reserve(now_ms, horizon).unwrap_or(horizon);
            let claim = gate.claim();
            let this = self.clone();
            let provider = provider.clone();
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                if let Ok(slot) = claim.gate.slots.clone().acquire_owned().await {
                    this.renew(&provider, due, slot).await;
                }
                drop(claim);
                this.wake.notify_one();
            });
        }
        Ok((count, full))
    }

    /// Renews one claimed connection, or stores when it is really due.
    async fn renew(&self, provider: &ProviderSetting, due: Due, _slot: OwnedSemaphorePermit) {
        let now = self.clock.now();
        let cadence = self.schedule.cadence(provider);
        if !is_due(now, due.issued_at, due.expires_at, cadence) {
            // Claimed early (a row from before the schedule, or the window
            // changed): store its real due instant, no provider call.
            let at = self
                .schedule
                .due_at(provider, due.issued_at, due.expires_at, true)
                .unwrap_or(now);
            if let Err(e) = queue::reschedule(&self.db, due.id, due.version, at).await {
                tracing::warn!(connection_id = %due.id, error = %e, "rescheduling a refresh failed");
            }
            metrics::proactive(provider.id.as_str(), "rescheduled");
            return;
        }
        let ask = RefreshAsk {
            min_valid_secs: 0,
            // Renew even a token that is still fresh (idle keep-alive), unless
            // someone renewed it since the claim (the version moved).
            force: true,
            seen_version: Some(due.version),
            cooldown_secs: 0,
            background: true,
        };
        let outcome = match self.tokens.refresh_shared(&due.caller, due.id, ask).await {
            Ok(_) => "renewed",
            Err(Error::RefreshInProgress { .. }) => "busy",
            Err(Error::NeedsReauth { .. } | Error::Revoked { .. }) => "needs_reauth",
            Err(Error::ConnectionNotFound { .. } | Error::ProviderRemoved { .. }) => "gone",
            Err(e) => {
                // The claim lapses and the connection comes due again.
                tracing::warn!(connection_id = %due.id, provider = %provider.id, error = %e, "background refresh failed");
                "failed"
            }
        };
        metrics::proactive(provider.id.as_str(), outcome);
    }

    /// Waits `pause`, or less if a refresh ends first.
    pub(crate) async fn idle(&self, pause: Duration) {
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = self.wake.notified() => {}
        }
    }

    /// Publishes how many connections each provider has due now.
    pub(crate) async fn sample_depth(&self) {
        match queue::depth(&self.db, self.clock.now()).await {
            Ok(rows) => {
                // Every configured provider, 0 when none is due.
                let mut depth: Vec<(String, u64)> = self
                    .providers
                    .all()
                    .map(|p| (p.id.to_string(), 0))
                    .collect();
                depth.extend(rows);
                metrics::set_due_depth(depth);
            }
            Err(e) => tracing::warn!(error = %e, "counting due refreshes failed"),
        }
    }
}
