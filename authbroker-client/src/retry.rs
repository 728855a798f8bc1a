//! Retrying what the server says is worth retrying, after the delay it
//! says (its `RetryInfo`), a bounded number of times.

use std::{future::Future, time::Duration};

use tonic::Status;

use crate::Error;

/// How many times, and how long at most, to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The longest single wait; a longer RetryInfo delay ends the retries
    /// (the caller is better off failing fast).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, waiting at most 5 s between two.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            max_delay: Duration::ZERO,
        }
    }

    /// Runs `call` until it succeeds, fails without a RetryInfo, asks for a
    /// wait longer than `max_delay`, or has run `max_attempts` times.
    pub async fn run<T, F, Fut>(&self, mut call: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut attempt = 1;
        loop {
            let error = match call().await {
                Ok(value) => return Ok(value),
                Err(status) => Error::from(status),
            };
            match error.retry_after {
                Some(delay) if attempt < self.max_attempts && delay <= self.max_delay => {
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                _ => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use tonic::Code;
    use tonic_types::{ErrorDetails, StatusExt};

    use super::*;

    fn retry_in(ms: u64) -> Status {
        let mut details = ErrorDetails::new();
        details.set_retry_info(Some(Duration::from_millis(ms)));
        Status::with_error_details(Code::Unavailable, "busy", details)
    }

    #[tokio::test]
    async fn waits_what_retry_info_says_then_succeeds() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let value = RetryPolicy::default()
            .run(|| async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(retry_in(200)),
                    _ => Ok(7),
                }
            })
            .await
            .expect("retried");
        assert_eq!(value, 7);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn gives_up_without_retry_info_or_past_the_limits() {
        let calls = AtomicU32::new(0);
        let error = RetryPolicy::default()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Status::not_found("gone"))
            })
            .await
            .expect_err("not retried");
        assert_eq!(error.code, Code::NotFound);
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let long = RetryPolicy::default()
            .run(|| async { Err::<(), _>(retry_in(60_000)) })
            .await
            .expect_err("a minute is past max_delay");
        assert_eq!(long.retry_after, Some(Duration::from_secs(60)));

        calls.store(0, Ordering::SeqCst);
        let policy = RetryPolicy {
            max_attempts: 2,
            max_delay: Duration::from_secs(1),
        };
        policy
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(retry_in(1))
            })
            .await
            .expect_err("attempts used up");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
