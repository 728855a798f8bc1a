//! The issuer's signing keys, cached: fetched on first use, again after an
//! hour, and again when a token names a key the cache lacks (the issuer
//! rotated), at most once a second; concurrent fetches are one.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::{
    IdTokenError,
    jwk::{Alg, VerifyingKey, parse_set},
};
use crate::flow::ProviderFailure;

/// How long a fetched key set is used before it is fetched again.
const MAX_AGE: Duration = Duration::from_secs(3600);
/// The least time between two fetches prompted by an unknown key.
const MIN_REFETCH: Duration = Duration::from_secs(1);

/// One issuer's key set.
#[derive(Default)]
pub(crate) struct KeyCache {
    cached: Mutex<Option<Cached>>,
    fetching: tokio::sync::Mutex<()>,
}

struct Cached {
    keys: Arc<Vec<VerifyingKey>>,
    at: Instant,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = self.lock().as_ref().map(|c| c.keys.len());
        f.debug_struct("KeyCache").field("keys", &keys).finish()
    }
}

impl KeyCache {
    /// Checks that `sig` is a signature of `message` by one of the issuer's
    /// keys fit for `alg` (and named `kid`, when the token names one).
    /// `fetch` reads the key set document.
    pub(crate) async fn verify<F, Fut>(
        &self,
        alg: Alg,
        kid: Option<&str>,
        message: &[u8],
        sig: &[u8],
        fetch: F,
    ) -> Result<(), IdTokenError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, ProviderFailure>>,
    {
        let started = Instant::now();
        let mut keys = match self.fresh() {
            Some(keys) => keys,
            None => self.refetch(started, &fetch).await?,
        };
        let mut verdict = check(&keys, alg, kid, message, sig);
        if verdict.is_none() {
            keys = self.refetch(started, &fetch).await?;
            verdict = check(&keys, alg, kid, message, sig);
        }
        match verdict {
            Some(true) => Ok(()),
            Some(false) => Err(IdTokenError::Invalid(
                "the signature does not verify with the issuer's key".into(),
            )),
            None => Err(IdTokenError::UnknownKey(format!(
                "no key in the issuer's key set fits alg and kid {:?}",
                kid.map(|k| k.chars().take(64).collect::<String>())
            ))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        self.cached.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self) -> Option<Arc<Vec<VerifyingKey>>> {
        self.lock()
            .as_ref()
            .filter(|c| c.at.elapsed() < MAX_AGE)
            .map(|c| c.keys.clone())
    }

    /// The key set as fetched after `since`: by this call, by a concurrent
    /// one, or (within `MIN_REFETCH` of the last fetch) the cached one.
    async fn refetch<F, Fut>(
        &self,
        since: Instant,
        fetch: &F,
    ) -> Result<Arc<Vec<VerifyingKey>>, IdTokenError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, ProviderFailure>>,
    {
        let _one = self.fetching.lock().await;
        if let Some(cached) = self.lock().as_ref()
            && (cached.at >= since || cached.at.elapsed() < MIN_REFETCH)
        {
            return Ok(cached.keys.clone());
        }
        let body = fetch().await.map_err(IdTokenError::KeysUnavailable)?;
        let keys = Arc::new(parse_set(&body).map_err(|reason| {
            IdTokenError::KeysUnavailable(ProviderFailure::Malformed {
                http_status: Some(200),
                reason,
            })
        })?);
        *self.lock() = Some(Cached {
            keys: keys.clone(),
            at: Instant::now(),
        });
        Ok(keys)
    }
}

/// Whether one of the keys fit for `alg` and `kid` verifies; `None` when
/// no key fits (the issuer may have rotated).
fn check(
    keys: &[VerifyingKey],
    alg: Alg,
    kid: Option<&str>,
    message: &[u8],
    sig: &[u8],
) -> Option<bool> {
    let fitting: Vec<&VerifyingKey> = keys
        .iter()
        .filter(|k| k.fits(alg) && kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
        .collect();
    (!fitting.is_empty()).then(|| fitting.iter().any(|k| k.verifies(alg, message, sig)))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use ring::{rand::SystemRandom, signature::EcdsaKeyPair};

    use super::*;
    use crate::oidc::jwk::tests::es256_key;

    fn document(keys: &[&serde_json::Value]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "keys": keys })).expect("json")
    }

    fn sign(pair: &EcdsaKeyPair) -> Vec<u8> {
        pair.sign(&SystemRandom::new(), b"m")
            .expect("sign")
            .as_ref()
            .to_vec()
    }

    #[tokio::test]
    async fn fetches_once_then_again_for_a_rotated_key() {
        let (old, old_jwk) = es256_key("old");
        let (new, new_jwk) = es256_key("new");
        let published = Mutex::new(document(&[&old_jwk]));
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(published.lock().expect("doc").clone())
        };
        let cache = KeyCache::default();
        for _ in 0..3 {
            cache
                .verify(Alg::Es256, Some("old"), b"m", &sign(&old), fetch)
                .await
                .expect("verifies");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "cached");

        *published.lock().expect("doc") = document(&[&old_jwk, &new_jwk]);
        tokio::time::sleep(MIN_REFETCH).await;
        cache
            .verify(Alg::Es256, Some("new"), b"m", &sign(&new), fetch)
            .await
            .expect("the rotated key is fetched");
        assert_eq!(fetches.load(Ordering::SeqCst), 2);

        // An unknown kid right after a fetch does not fetch again.
        let refused = cache
            .verify(Alg::Es256, Some("unknown"), b"m", &sign(&new), fetch)
            .await;
        assert!(matches!(refused, Err(IdTokenError::UnknownKey(_))));
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_signature_by_another_key_is_refused() {
        let (_, published) = es256_key("k");
        let (forger, _) = es256_key("k");
        let doc = document(&[&published]);
        let cache = KeyCache::default();
        let refused = cache
            .verify(Alg::Es256, Some("k"), b"m", &sign(&forger), || async {
                Ok(doc.clone())
            })
            .await;
        assert!(matches!(refused, Err(IdTokenError::Invalid(r)) if r.contains("does not verify")));
    }

    #[tokio::test]
    async fn an_unreachable_key_set_is_a_provider_failure() {
        let cache = KeyCache::default();
        let failed = cache
            .verify(Alg::Es256, None, b"m", b"s", || async {
                Err(ProviderFailure::Unavailable {
                    http_status: Some(503),
                    reason: "down".into(),
                    retry_after: None,
                    retry_safe: true,
                })
            })
            .await;
        assert!(matches!(failed, Err(IdTokenError::KeysUnavailable(_))));
    }
}
