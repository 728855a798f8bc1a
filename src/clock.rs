//! The service's one source of time. Everything that decides by time (token
//! expiry, leases, state lifetimes, the cache's TTL) asks the clock it was
//! given, so tests can move time instead of sleeping.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;

    /// Seconds since the Unix epoch: what the store and the decisions use.
    fn now(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }
}

/// The clock handed around.
pub type SharedClock = Arc<dyn Clock>;

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        system_millis()
    }
}

fn system_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The system's clock plus an offset that tests move forward: time still
/// passes on its own (so waits with deadlines end), and a test can jump over
/// a token's lifetime instead of sleeping through it.
#[derive(Debug, Default)]
pub struct TestClock {
    offset_millis: AtomicI64,
}

impl TestClock {
    /// A clock at the system's time.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.offset_millis
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_millis(&self) -> i64 {
        system_millis() + self.offset_millis.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now() {
        let clock = TestClock::new();
        let before = clock.now();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now() >= before + 3600);
        assert!(SystemClock.now() < clock.now());
    }
}
