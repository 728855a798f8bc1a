//! The configured providers, looked up by id: a requested id that is not
//! configured is the caller's mistake; a stored one that is gone is the
//! operator's; an OpenID provider not yet discovered is unavailable for now.

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
};

use crate::{
    domain::ProviderId,
    error::{Error, Result, Step},
    flow::ProviderFailure,
    oidc::Discovered,
    providers::ProviderSetting,
};

/// One provider: as configured, and as usable (for an oidc provider, once
/// its discovery document has been read).
struct Entry {
    configured: Arc<ProviderSetting>,
    ready: OnceLock<Arc<ProviderSetting>>,
}

/// Providers by id.
pub(crate) struct Providers(BTreeMap<ProviderId, Entry>);

impl Providers {
    /// Indexes the configured providers; all but oidc ones are ready.
    pub(crate) fn new(providers: impl IntoIterator<Item = ProviderSetting>) -> Self {
        Self(
            providers
                .into_iter()
                .map(|p| {
                    let configured = Arc::new(p);
                    let ready = OnceLock::new();
                    if configured.oidc.is_none() {
                        let _ = ready.set(configured.clone());
                    }
                    (configured.id.clone(), Entry { configured, ready })
                })
                .collect(),
        )
    }

    /// Every usable provider.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<ProviderSetting>> {
        self.0.values().filter_map(|e| e.ready.get())
    }

    /// Every configured provider, usable or not (for what config alone
    /// decides, such as refresh limits).
    pub(crate) fn configured(&self) -> impl Iterator<Item = &Arc<ProviderSetting>> {
        self.0.values().map(|e| &e.configured)
    }

    /// The oidc providers still waiting for their discovery document.
    pub(crate) fn undiscovered(&self) -> Vec<Arc<ProviderSetting>> {
        self.0
            .values()
            .filter(|e| e.ready.get().is_none())
            .map(|e| e.configured.clone())
            .collect()
    }

    /// Makes an oidc provider usable with what its discovery found.
    pub(crate) fn set_discovered(&self, id: &ProviderId, found: &Discovered) {
        let Some(entry) = self.0.get(id) else { return };
        let Some(oidc) = entry.configured.oidc.as_ref() else {
            return;
        };
        let _ = oidc.jwks_uri.set(found.jwks_uri.clone());
        let _ = entry
            .ready
            .set(Arc::new(entry.configured.discovered(oidc, found)));
    }

    /// The provider a request names.
    pub(crate) fn requested(&self, id: &ProviderId) -> Result<Arc<ProviderSetting>> {
        match self.0.get(id) {
            Some(entry) => ready(entry),
            None => Err(Error::UnknownProvider {
                provider: id.to_string(),
            }),
        }
    }

    /// The provider of a stored connection or state; it may have been
    /// removed from the config since.
    pub(crate) fn stored(&self, id: &ProviderId) -> Result<Arc<ProviderSetting>> {
        match self.0.get(id) {
            Some(entry) => ready(entry),
            None => Err(Error::ProviderRemoved {
                provider: id.clone(),
            }),
        }
    }
}

fn ready(entry: &Entry) -> Result<Arc<ProviderSetting>> {
    entry.ready.get().cloned().ok_or_else(|| {
        Error::provider(
            &entry.configured.id,
            Step::Discovery,
            ProviderFailure::Unavailable {
                http_status: None,
                reason: "its discovery document has not been read yet (retried in the background)"
                    .into(),
                retry_after: Some(5),
                retry_safe: true,
            },
        )
    })
}
