//! A caller's rate limit: a token bucket of `burst` calls refilled at
//! `per_second`, per replica. A call over the limit is refused with the time
//! until the next one would pass (rounded up to a tenth of a second), so a
//! well-behaved client waits that and is admitted.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// One caller's bucket.
#[derive(Debug)]
pub(crate) struct RateLimit {
    per_second: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    /// A full bucket of `burst` calls, refilled at `per_second`.
    pub(crate) fn new(per_second: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            per_second,
            burst,
            bucket: Mutex::new(Bucket {
                tokens: burst,
                at: now,
            }),
        }
    }

    /// Takes one call's token at `now`, or says how long until one is there.
    pub(crate) fn admit(&self, now: Instant) -> Result<(), Duration> {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at = now.max(bucket.at);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            // Rounded up to a tenth of a second: a client gets a plain
            // figure, and waiting it always suffices.
            let wait = (1.0 - bucket.tokens) / self.per_second;
            Err(Duration::from_millis(
                ((wait * 10.0 - 1e-9).ceil() as u64).max(1) * 100,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_calls_are_spaced_by_the_rate() {
        let t0 = Instant::now();
        let limit = RateLimit::new(10.0, 3, t0);
        for _ in 0..3 {
            assert_eq!(limit.admit(t0), Ok(()));
        }
        let wait = limit.admit(t0).expect_err("over the burst");
        assert_eq!(wait, Duration::from_millis(100));
        // A refused call takes nothing: after the wait, one passes.
        assert_eq!(limit.admit(t0 + Duration::from_millis(100)), Ok(()));
        assert!(limit.admit(t0 + Duration::from_millis(100)).is_err());
        // A long pause refills no more than the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(limit.admit(later), Ok(()));
        }
        assert!(limit.admit(later).is_err());
        // Waits are rounded up to a tenth of a second.
        let slow = RateLimit::new(0.3, 1, t0);
        assert_eq!(slow.admit(t0), Ok(()));
        assert_eq!(slow.admit(t0), Err(Duration::from_millis(3_400)));
    }
}
