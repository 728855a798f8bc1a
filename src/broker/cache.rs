//! The hot path's cache: recently served tokens by connection id, so a valid
//! token needs no database round trip. Each entry is trusted for `ttl` only;
//! that is the bound on how long a refresh or revoke on another replica goes
//! unseen here. Changes made by this process update it at once. Time comes
//! in as a parameter.

use std::{collections::HashMap, sync::RwLock, time::Duration};

use crate::domain::{Caller, ConnectionId, ServedToken};

/// A cached token of one connection.
struct Cached {
    /// Owning caller; another caller never gets a hit.
    caller: Caller,
    token: ServedToken,
    stored_ms: i64,
}

/// Bounded map of cached tokens.
pub(crate) struct TokenCache {
    entries: RwLock<HashMap<ConnectionId, Cached>>,
    ttl_ms: i64,
    capacity: usize,
}

impl TokenCache {
    /// A cache trusting entries for `ttl`, holding at most `capacity`.
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            ttl_ms: ttl.as_millis() as i64,
            capacity,
        }
    }

    /// The token of `id` if it belongs to `caller` and is within its TTL at `now_ms`.
    pub(crate) fn get(
        &self,
        id: ConnectionId,
        caller: &Caller,
        now_ms: i64,
    ) -> Option<ServedToken> {
        if self.ttl_ms == 0 {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&id)
            .filter(|c| c.caller == *caller && now_ms - c.stored_ms < self.ttl_ms)
            .map(|c| c.token.clone())
    }

    /// The expiry of the entry for `id` owned by `caller`, even past its TTL:
    /// a hint that the token needs a refresh, never a reason to serve it.
    pub(crate) fn expiry_hint(&self, id: ConnectionId, caller: &Caller) -> Option<i64> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&id)
            .filter(|c| c.caller == *caller)
            .map(|c| c.token.expires_at)
    }

    /// Stores or replaces the entry for `id`.
    pub(crate) fn put(&self, id: ConnectionId, caller: &Caller, token: ServedToken, now_ms: i64) {
        if self.ttl_ms == 0 || self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&id) {
            // Full: drop what is past its TTL; if still full, drop an arbitrary
            // half. Both are cheap and rare at a sane capacity.
            entries.retain(|_, c| now_ms - c.stored_ms < self.ttl_ms);
            if entries.len() >= self.capacity {
                let keep = self.capacity / 2;
                let mut n = 0;
                entries.retain(|_, _| {
                    n += 1;
                    n <= keep
                });
            }
        }
        entries.insert(
            id,
            Cached {
                caller: caller.clone(),
                token,
                stored_ms: now_ms,
            },
        );
    }

    /// Forgets `id` (revoked, needs re-authorization, unknown or reconnected).
    pub(crate) fn remove(&self, id: ConnectionId) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AccessToken;

    fn token() -> ServedToken {
        ServedToken {
            token: AccessToken::new("t"),
            token_type: "Bearer".into(),
            expires_at: 100,
            provider: crate::domain::ProviderId::trusted("ares"),
            scopes: Default::default(),
        }
    }

    #[test]
    fn hits_only_for_the_owner_within_ttl() {
        let cache = TokenCache::new(Duration::from_millis(50), 10);
        let (id, billing) = (ConnectionId::generate(), Caller::trusted("billing"));
        cache.put(id, &billing, token(), 1_000);
        assert!(cache.get(id, &billing, 1_049).is_some());
        assert!(cache.get(id, &Caller::trusted("search"), 1_000).is_none());
        assert!(cache.get(id, &billing, 1_050).is_none());
        assert_eq!(cache.expiry_hint(id, &billing), Some(100));
        assert_eq!(cache.expiry_hint(id, &Caller::trusted("search")), None);
    }

    #[test]
    fn stays_bounded() {
        let cache = TokenCache::new(Duration::from_secs(10), 4);
        let c = Caller::trusted("c");
        let mut last = ConnectionId::generate();
        for _ in 0..100 {
            last = ConnectionId::generate();
            cache.put(last, &c, token(), 0);
        }
        assert!(cache.entries.read().expect("lock").len() <= 4);
        assert!(cache.get(last, &c, 0).is_some(), "the newest entry is kept");
        cache.remove(last);
        assert!(cache.get(last, &c, 0).is_none());
    }

    #[test]
    fn zero_ttl_disables() {
        let cache = TokenCache::new(Duration::ZERO, 4);
        let (id, c) = (ConnectionId::generate(), Caller::trusted("c"));
        cache.put(id, &c, token(), 0);
        assert!(cache.get(id, &c, 0).is_none());
    }
}
