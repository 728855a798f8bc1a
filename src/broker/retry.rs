//! Bounded retries with backoff for provider calls, honouring Retry-After.

use std::{future::Future, time::Duration};

use crate::flow::ProviderFailure;

/// Attempts per call for failures the caller deems retryable.
const ATTEMPTS: u32 = 3;
/// First backoff; each next one is four times longer (100 ms, 400 ms).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest Retry-After honoured inside one call; a longer one is returned.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(2);

/// Runs `call` up to [`ATTEMPTS`] times while it fails in a way `retryable`
/// accepts; `what` names the call in logs.
pub(crate) async fn with_retries<T, F, Fut>(
    what: &str,
    retryable: impl Fn(&ProviderFailure) -> bool,
    mut call: F,
) -> Result<T, ProviderFailure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderFailure>>,
{
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(failure) if attempt < ATTEMPTS && retryable(&failure) => {
                let wait = match &failure {
                    ProviderFailure::Unavailable {
                        retry_after: Some(secs),
                        ..
                    } => Duration::from_secs(*secs),
                    _ => backoff,
                };
                if wait > MAX_RETRY_AFTER {
                    return Err(failure);
                }
                tracing::info!(
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    what,
                    ?failure,
                    "retrying"
                );
                tokio::time::sleep(wait).await;
                backoff *= 4;
                attempt += 1;
            }
            other => return other,
        }
    }
}
