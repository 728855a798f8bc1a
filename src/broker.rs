//! Orchestration: each RPC's work, in terms of the sans-IO [`crate::flow`],
//! the provider profiles, the outbound [`HttpClient`] and the [`crate::store`].
//! Inputs arrive validated by the API layer.

mod auth;
mod cache;
mod connect;
mod connections;
mod flight;
mod refresh;
mod retry;
mod sealing;
mod tokens;
mod usage;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use sea_orm::DatabaseConnection;

use crate::{
    config::{ProviderSetting, TokenSettings},
    crypto::SealingKey,
    error::{Error, Result},
    http::HttpClient,
};

pub use auth::{BeginAuth, Callback, CallbackOutcome};
pub use tokens::AccessToken;
pub use usage::{UsageOutcome, UsageRequest};

/// The authenticated calling service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

/// Shared state of the service; cheap to clone.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    key: SealingKey,
    http: HttpClient,
    providers: BTreeMap<String, Arc<ProviderSetting>>,
    state_ttl: Duration,
    /// Refreshes in flight in this process, by connection id (see `flight`).
    flights: Mutex<HashMap<String, flight::Flight>>,
    /// Recently served tokens.
    cache: cache::TokenCache,
    /// Refresh window and cache bounds.
    tokens: TokenSettings,
    /// How long a refresh lease lasts: longer than any refresh can take.
    lease: Duration,
    /// This process's name on the leases it takes.
    owner: String,
}

/// Everything [`Broker::new`] needs besides the database, key, client and providers.
pub struct BrokerSettings {
    /// Lifetime of BeginAuth states.
    pub state_ttl: Duration,
    /// Token cache and refresh settings.
    pub tokens: TokenSettings,
    /// Refresh lease duration: longer than the slowest refresh with retries.
    pub lease: Duration,
}

impl Broker {
    /// Assembles the broker.
    pub fn new(
        db: DatabaseConnection,
        key: SealingKey,
        http: HttpClient,
        providers: impl IntoIterator<Item = ProviderSetting>,
        settings: BrokerSettings,
    ) -> Self {
        // The pod name in a cluster, plus a random suffix: two processes never share it.
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "authbroker".into());
        let owner = format!(
            "{host}/{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        Self {
            inner: Arc::new(Inner {
                db,
                key,
                http,
                providers: providers
                    .into_iter()
                    .map(|p| (p.id.clone(), Arc::new(p)))
                    .collect(),
                state_ttl: settings.state_ttl,
                flights: Mutex::new(HashMap::new()),
                cache: cache::TokenCache::new(
                    settings.tokens.cache_ttl,
                    settings.tokens.cache_capacity,
                ),
                tokens: settings.tokens,
                lease: settings.lease,
                owner,
            }),
        }
    }

    /// The database, for health checks.
    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    fn provider(&self, id: &str) -> Result<Arc<ProviderSetting>> {
        self.inner
            .providers
            .get(id)
            .cloned()
            .ok_or_else(|| Error::invalid("provider", format!("no provider {id:?} is configured")))
    }

    /// The provider of a stored row; it may have been removed from config since.
    fn provider_of_row(&self, id: &str) -> Result<Arc<ProviderSetting>> {
        self.inner.providers.get(id).cloned().ok_or_else(|| {
            Error::FailedPrecondition(format!("provider {id:?} is no longer configured"))
        })
    }
}
