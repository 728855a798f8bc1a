//! The hot path's cache: recently served tokens by connection id, so a valid
//! token needs no database round trip. Each entry is trusted for `ttl` only;
//! that is the bound on how long a refresh or revoke on another replica goes
//! unseen here. Changes made by this process update it at once.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use super::tokens::AccessToken;

/// A cached token of one connection.
pub(super) struct Cached {
    /// Owning caller; another caller never gets a hit.
    caller: String,
    token: AccessToken,
    stored: Instant,
}

impl Cached {
    pub fn new(caller: &str, token: AccessToken) -> Self {
        Self {
            caller: caller.to_owned(),
            token,
            stored: Instant::now(),
        }
    }
}

/// Bounded map of cached tokens.
pub(super) struct TokenCache {
    entries: RwLock<HashMap<String, Cached>>,
    ttl: Duration,
    capacity: usize,
}

impl TokenCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            ttl,
            capacity,
        }
    }

    /// The token of `id` if it belongs to `caller` and is within its TTL.
    pub fn get(&self, id: &str, caller: &str) -> Option<AccessToken> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .get(id)
            .filter(|c| c.caller == caller && c.stored.elapsed() < self.ttl)
            .map(|c| c.token.clone())
    }

    /// The expiry of the entry for `id` owned by `caller`, even past its TTL:
    /// a hint that the token needs a refresh, never a reason to serve it.
    pub fn expiry_hint(&self, id: &str, caller: &str) -> Option<i64> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .get(id)
            .filter(|c| c.caller == caller)
            .map(|c| c.token.expires_at)
    }

    /// Stores or replaces the entry for `id`.
    pub fn put(&self, id: &str, entry: Cached) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(id) {
            // Full: drop what is past its TTL; if still full, drop an arbitrary
            // half. Both are cheap and rare at a sane capacity.
            entries.retain(|_, c| c.stored.elapsed() < self.ttl);
            if entries.len() >= self.capacity {
                let keep = self.capacity / 2;
                let mut n = 0;
                entries.retain(|_, _| {
                    n += 1;
                    n <= keep
                });
            }
        }
        entries.insert(id.to_owned(), entry);
    }

    /// Forgets `id` (revoked, needs re-authorization, or unknown).
    pub fn remove(&self, id: &str) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(caller: &str) -> Cached {
        let token = AccessToken {
            token: crate::secret::Secret::new("t"),
            token_type: "Bearer".into(),
            expires_at: 100,
        };
        Cached::new(caller, token)
    }

    #[test]
    fn hits_only_for_the_owner_within_ttl() {
        let cache = TokenCache::new(Duration::from_millis(50), 10);
        cache.put("a", entry("billing"));
        assert!(cache.get("a", "billing").is_some());
        assert!(cache.get("a", "search").is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("a", "billing").is_none());
    }

    #[test]
    fn stays_bounded() {
        let cache = TokenCache::new(Duration::from_secs(10), 4);
        for i in 0..100 {
            cache.put(&i.to_string(), entry("c"));
        }
        assert!(cache.entries.read().expect("lock").len() <= 4);
        assert!(cache.get("99", "c").is_some(), "the newest entry is kept");
        cache.remove("99");
        assert!(cache.get("99", "c").is_none());
    }

    #[test]
    fn zero_ttl_disables() {
        let cache = TokenCache::new(Duration::ZERO, 4);
        cache.put("a", entry("c"));
        assert!(cache.get("a", "c").is_none());
    }
}
