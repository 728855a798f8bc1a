//! Stamps every token write with when the background refresher should renew
//! it (see `flow::schedule`), with a random jitter so connections made or
//! refreshed together do not come due together.

use crate::{
    flow::schedule::{Cadence, refresh_due_at},
    providers::ProviderSetting,
    store::connections::TokenWrite,
};

/// The refresh window, and each provider's idle keep-alive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    /// Renew tokens expiring within this many seconds.
    pub(crate) window_secs: i64,
}

impl Schedule {
    /// The cadence for `provider`'s connections.
    pub(crate) fn cadence(&self, provider: &ProviderSetting) -> Cadence {
        Cadence {
            window_secs: self.window_secs,
            max_idle_secs: provider.refresh.max_idle_secs,
        }
    }

    /// When tokens issued at `issued_at` should be renewed.
    pub(crate) fn due_at(
        &self,
        provider: &ProviderSetting,
        issued_at: i64,
        expires_at: i64,
        has_refresh_token: bool,
    ) -> Option<i64> {
        refresh_due_at(
            issued_at,
            expires_at,
            has_refresh_token,
            self.cadence(provider),
            rand::random::<f64>(),
        )
    }

    /// Sets `write.refresh_due_at` for tokens written at `now`.
    pub(crate) fn stamp(&self, provider: &ProviderSetting, now: i64, write: &mut TokenWrite) {
        write.refresh_due_at = self.due_at(
            provider,
            now,
            write.expires_at,
            write.refresh_token.is_some(),
        );
    }
}
