//! The service's core, as a few services that each own what they use, and a
//! thin front the API calls. Layers, top to bottom (a module only uses the
//! ones below it):
//!
//! - [`Broker`]: the front; one method per RPC.
//! - `connect` (BeginAuth, CompleteAuth, password) -> `account` (upsert);
//!   `usage_deadline`, `usage_resolve` -> `usage` (the ledger) ->
//!   `usage_request`;
//!   `connections` (look-ups, revoke, user info).
//! - `proactive` (the background refresher) -> `tokens` (cache, single
//!   flight) -> `refresh` (leases across replicas) -> `gates` (per-provider
//!   rate limit, 429 pause; `replicas` counts who shares it), `schedule`
//!   (when written tokens come due).
//! - `provider_client` (HTTP, retries, answers) -> `retry`; `vault`
//!   (sealing); `registry` (configured providers); `status`; `cache`;
//!   `flight`; `heartbeat` (renewing leases and claims).
//!
//! Decisions live in [`crate::flow`], rows in [`crate::store`]; time comes
//! from the [`crate::clock::Clock`] the broker is given.

mod account;
mod cache;
mod connect;
mod connections;
mod flight;
mod gates;
mod heartbeat;
mod liveness;
mod openid;
mod proactive;
mod provider_client;
mod refresh;
mod registry;
mod rekey;
mod replicas;
mod retry;
mod schedule;
mod status;
mod tokens;
mod usage;
mod usage_deadline;
mod usage_request;
mod usage_resolve;
mod vault;

use std::{
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use sea_orm::DatabaseConnection;
use serde_json::{Map, Value};

pub(crate) use connect::{BeginAuth, Begun, Callback, CallbackOutcome, PasswordSignIn};
pub(crate) use connections::ProviderRevocation;
pub(crate) use rekey::{Progress as ResealProgress, check_stored as check_stored_keys, reseal};
pub(crate) use usage_request::{UsageOutcome, UsageRequest};

pub(crate) use crate::store::connections::{ListFilter, PageAfter};
use crate::{
    clock::SharedClock,
    config::TokenSettings,
    crypto::KeyRing,
    domain::{Caller, Connection, ConnectionId, Policy, ServedToken},
    error::Result,
    http::HttpClient,
    providers::ProviderSetting,
};

/// Everything the broker is built from besides the database, key and client.
pub(crate) struct BrokerSettings {
    /// Lifetime of BeginAuth states.
    pub(crate) state_ttl: Duration,
    /// Token cache and refresh settings.
    pub(crate) tokens: TokenSettings,
    /// The longest one provider attempt with its retries can take.
    pub(crate) attempt_budget: Duration,
    /// This process's name on the leases it takes.
    pub(crate) owner: String,
}

/// The front the API calls; cheap to clone.
#[derive(Clone)]
pub(crate) struct Broker {
    connector: Arc<connect::Connector>,
    tokens: Arc<tokens::TokenService>,
    usage: Arc<usage::UsageLedger>,
    connections: Arc<connections::Connections>,
    proactive: Arc<proactive::Proactive>,
    liveness: Arc<liveness::Liveness>,
    discovery: Arc<openid::Discovery>,
    replicas: Arc<AtomicU64>,
    owner: String,
    db: DatabaseConnection,
    clock: SharedClock,
}

impl Broker {
    /// Assembles the services.
    pub(crate) fn new(
        db: DatabaseConnection,
        key: KeyRing,
        http: HttpClient,
        providers: impl IntoIterator<Item = ProviderSetting>,
        clock: SharedClock,
        settings: BrokerSettings,
    ) -> Self {
        let (lease, max_wait) = (settings.tokens.refresh_lease, settings.tokens.max_wait);
        let vault = Arc::new(vault::Vault::new(key));
        let client = Arc::new(provider_client::ProviderClient::new(http));
        let providers = Arc::new(registry::Providers::new(providers));
        let replicas = Arc::new(AtomicU64::new(1));
        let gates = Arc::new(gates::Gates::new(providers.configured(), replicas.clone()));
        let liveness = Arc::new(liveness::Liveness::new(
            db.clone(),
            settings.owner.clone(),
            clock.clone(),
        ));
        let schedule = schedule::Schedule {
            window_secs: settings.tokens.refresh_window.as_secs() as i64,
        };
        let refresher = refresh::Refresher {
            db: db.clone(),
            vault: vault.clone(),
            client: client.clone(),
            providers: providers.clone(),
            clock: clock.clone(),
            lease: settings.tokens.refresh_lease,
            max_wait,
            owner: settings.owner.clone(),
            liveness: liveness.clone(),
            schedule,
            gates: gates.clone(),
        };
        let tokens = Arc::new(tokens::TokenService::new(
            db.clone(),
            vault.clone(),
            refresher,
            clock.clone(),
            settings.tokens,
        ));
        let accounts = account::Accounts {
            db: db.clone(),
            vault: vault.clone(),
            client: client.clone(),
            tokens: tokens.clone(),
            clock: clock.clone(),
            schedule,
        };
        let connector = Arc::new(connect::Connector {
            db: db.clone(),
            vault: vault.clone(),
            client: client.clone(),
            providers: providers.clone(),
            accounts,
            clock: clock.clone(),
            state_ttl: settings.state_ttl,
        });
        // A lease wait, a refresh, a forced refresh after a 401 and two usage
        // calls, with room to spare.
        let stale_pending_secs = 4 * settings.attempt_budget.as_secs() as i64;
        let usage = Arc::new(usage::UsageLedger {
            db: db.clone(),
            tokens: tokens.clone(),
            client: client.clone(),
            providers: providers.clone(),
            clock: clock.clone(),
            stale_pending_secs,
            owner: settings.owner.clone(),
            liveness: liveness.clone(),
            claim_lease: lease,
            max_wait,
        });
        let discovery = Arc::new(openid::Discovery {
            providers: providers.clone(),
            client: client.clone(),
        });
        let connections = Arc::new(connections::Connections {
            db: db.clone(),
            vault: vault.clone(),
            tokens: tokens.clone(),
            client,
            providers: providers.clone(),
            clock: clock.clone(),
        });
        let proactive = Arc::new(proactive::Proactive {
            db: db.clone(),
            tokens: tokens.clone(),
            providers,
            gates,
            schedule,
            clock: clock.clone(),
            claim: lease,
            wake: Arc::new(tokio::sync::Notify::new()),
        });
        Self {
            connector,
            tokens,
            usage,
            connections,
            proactive,
            liveness,
            discovery,
            replicas,
            owner: settings.owner,
            db,
            clock,
        }
    }

    /// BeginAuth.
    pub(crate) async fn begin_auth(
        &self,
        caller: &Caller,
        policy: &Policy,
        req: BeginAuth,
    ) -> Result<Begun> {
        self.connector.begin(caller, policy, req).await
    }

    /// CompleteAuth.
    pub(crate) async fn complete_auth(
        &self,
        caller: &Caller,
        policy: &Policy,
        cb: Callback,
    ) -> Result<CallbackOutcome> {
        self.connector.complete(caller, policy, cb).await
    }

    /// SignInWithPassword.
    pub(crate) async fn sign_in_with_password(
        &self,
        caller: &Caller,
        req: PasswordSignIn,
    ) -> Result<Connection> {
        self.connector.sign_in_with_password(caller, req).await
    }

    /// GetAccessToken; `wait` bounds any wait for a refresh (the caller's deadline).
    pub(crate) async fn access_token(
        &self,
        caller: &Caller,
        id: ConnectionId,
        min_valid_secs: i64,
        force: bool,
        wait: Option<Duration>,
    ) -> Result<ServedToken> {
        self.tokens
            .access_token(caller, id, min_valid_secs, force, wait)
            .await
    }

    /// RecordUsage; `wait` bounds the call (the caller's deadline).
    pub(crate) async fn record_usage(
        &self,
        caller: &Caller,
        req: UsageRequest,
        wait: Option<Duration>,
    ) -> Result<UsageOutcome> {
        self.usage.record_within(caller, req, wait).await
    }

    /// ResolveUsage: `charged` is what the caller verified with the provider.
    pub(crate) async fn resolve_usage(
        &self,
        caller: &Caller,
        usage_id: &str,
        charged: bool,
    ) -> Result<()> {
        self.usage.resolve(caller, usage_id, charged).await
    }

    /// GetUserInfo.
    pub(crate) async fn user_info(
        &self,
        caller: &Caller,
        id: ConnectionId,
    ) -> Result<Map<String, Value>> {
        self.connections.user_info(caller, id).await
    }

    /// GetConnection.
    pub(crate) async fn connection(&self, caller: &Caller, id: ConnectionId) -> Result<Connection> {
        self.connections.get(caller, id).await
    }

    /// ListConnections.
    pub(crate) async fn list_connections(
        &self,
        caller: &Caller,
        filter: &ListFilter<'_>,
        after: Option<&PageAfter>,
        limit: u64,
    ) -> Result<Vec<Connection>> {
        self.connections.list(caller, filter, after, limit).await
    }

    /// UpdateConnectionLabels.
    pub(crate) async fn set_labels(
        &self,
        caller: &Caller,
        id: ConnectionId,
        labels: &crate::domain::Labels,
    ) -> Result<Connection> {
        self.connections.set_labels(caller, id, labels).await
    }

    /// RevokeConnection.
    pub(crate) async fn revoke(
        &self,
        caller: &Caller,
        id: ConnectionId,
    ) -> Result<(Connection, ProviderRevocation)> {
        self.connections.revoke(caller, id).await
    }

    /// One pass of the background refresher, taking what the rate allows
    /// within `horizon`: how many refreshes it started, and whether more
    /// were due than it could take.
    pub(crate) async fn background_pass(&self, horizon: Duration) -> Result<(usize, bool)> {
        self.proactive.pass(horizon).await
    }

    /// Waits `pause`, or less if a background refresh ends first.
    pub(crate) async fn background_idle(&self, pause: Duration) {
        self.proactive.idle(pause).await;
    }

    /// Publishes the due-queue depth per provider.
    pub(crate) async fn sample_due_depth(&self) {
        self.proactive.sample_depth().await;
    }

    /// Reads the discovery documents of the oidc providers once, then keeps
    /// retrying those that failed in the background: one unreachable issuer
    /// makes its own provider unavailable, not the service.
    /// Start-up waits for the first round at most `openid::STARTUP_WAIT`.
    pub(crate) async fn discover_providers(&self) {
        let discovery = self.discovery.clone();
        let first = tokio::spawn(async move { discovery.attempt().await });
        match tokio::time::timeout(openid::STARTUP_WAIT, first).await {
            Ok(Ok(0)) => {}
            _ => {
                tokio::spawn(self.discovery.clone().until_done());
            }
        }
    }

    /// Takes this process's lock (PostgreSQL) and keeps it for its life, so
    /// other replicas see soon when it dies; see `flow::liveness`.
    pub(crate) async fn hold_process_lock(&self) {
        self.liveness.hold_lock().await;
    }

    /// Keeps the live replica count (for rate-limit shares) current; runs
    /// until the process exits.
    pub(crate) async fn count_replicas(&self) {
        replicas::keep_count(
            self.db.clone(),
            self.owner.clone(),
            self.clock.clone(),
            self.replicas.clone(),
        )
        .await;
    }

    /// Leaves the replica count at a clean exit.
    pub(crate) async fn leave(&self) {
        replicas::leave(&self.db, &self.owner, &self.clock).await;
    }
}
