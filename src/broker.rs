//! Orchestration: each RPC's work, in terms of the sans-IO [`crate::flow`],
//! the provider profiles, the outbound [`HttpClient`] and the [`crate::store`].
//! Inputs arrive validated by the API layer.

mod auth;
mod connect;
mod connections;
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
    config::ProviderSetting,
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
    /// One lock per connection being refreshed, so concurrent callers in this
    /// process cause one provider call.
    refresh_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Broker {
    /// Assembles the broker.
    pub fn new(
        db: DatabaseConnection,
        key: SealingKey,
        http: HttpClient,
        providers: impl IntoIterator<Item = ProviderSetting>,
        state_ttl: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                key,
                http,
                providers: providers
                    .into_iter()
                    .map(|p| (p.id.clone(), Arc::new(p)))
                    .collect(),
                state_ttl,
                refresh_locks: Mutex::new(HashMap::new()),
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
