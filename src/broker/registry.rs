//! The configured providers, looked up by id: a requested id that is not
//! configured is the caller's mistake; a stored one that is gone is the
//! operator's.

use std::{collections::BTreeMap, sync::Arc};

use crate::{
    domain::ProviderId,
    error::{Error, Result},
    providers::ProviderSetting,
};

/// Providers by id.
pub(crate) struct Providers(BTreeMap<ProviderId, Arc<ProviderSetting>>);

impl Providers {
    /// Indexes the configured providers.
    pub(crate) fn new(providers: impl IntoIterator<Item = ProviderSetting>) -> Self {
        Self(
            providers
                .into_iter()
                .map(|p| (p.id.clone(), Arc::new(p)))
                .collect(),
        )
    }

    /// Every configured provider.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<ProviderSetting>> {
        self.0.values()
    }

    /// The provider a request names.
    pub(crate) fn requested(&self, id: &ProviderId) -> Result<Arc<ProviderSetting>> {
        self.0
            .get(id)
            .cloned()
            .ok_or_else(|| Error::UnknownProvider {
                provider: id.to_string(),
            })
    }

    /// The provider of a stored connection or state; it may have been
    /// removed from the config since.
    pub(crate) fn stored(&self, id: &ProviderId) -> Result<Arc<ProviderSetting>> {
        self.0
            .get(id)
            .cloned()
            .ok_or_else(|| Error::ProviderRemoved {
                provider: id.clone(),
            })
    }
}
