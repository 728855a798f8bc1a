//! The open connections of one listener and what each is doing, so that a
//! full listener can make room by closing the connection that matters least:
//! one that never finished its handshake, else the one idle longest. A
//! connection carrying a call is never chosen.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::Waker,
    time::{Duration, Instant},
};

/// What a connection is doing, shared by its IO (which enforces deadlines)
/// and the calls it carries (which mark it busy).
#[derive(Debug)]
pub(crate) struct Activity {
    id: u64,
    /// Milliseconds since the registry's epoch.
    accepted_ms: u64,
    /// When the last call ended, or the handshake completed (ms since epoch).
    last_active_ms: AtomicU64,
    handshaken: AtomicBool,
    in_flight: AtomicUsize,
    closing: AtomicBool,
    epoch: Instant,
    /// The read side's waker, woken when the deadline may have moved.
    waker: Mutex<Option<Waker>>,
}

/// When a connection must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// Now: evicted, or past a deadline.
    Now,
    /// At this instant unless something happens first.
    At(Instant),
    /// Not while calls are in flight.
    None,
}

impl Activity {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The HTTP/2 preface and the first frame arrived: the handshake is done.
    pub(crate) fn handshake_done(&self) {
        if !self.handshaken.swap(true, Ordering::Relaxed) {
            self.last_active_ms.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// A call starts on this connection.
    pub(crate) fn call_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// A call (its whole response) ended: the idle clock starts again.
    pub(crate) fn call_ended(&self) {
        self.last_active_ms.store(self.now_ms(), Ordering::Relaxed);
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The read side may be waiting without a timer: arm it.
            self.wake();
        }
    }

    /// Asks the connection to close at its next read.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Relaxed);
        self.wake();
    }

    /// Remembers the read side's waker.
    pub(crate) fn register(&self, waker: &Waker) {
        let mut slot = self.waker.lock().unwrap_or_else(|e| e.into_inner());
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            waker.wake();
        }
    }

    /// When this connection must close, given the limits.
    pub(crate) fn deadline(&self, handshake: Duration, idle: Duration) -> Deadline {
        if self.closing.load(Ordering::Relaxed) {
            return Deadline::Now;
        }
        if !self.handshaken.load(Ordering::Relaxed) {
            return self.at(self.accepted_ms, handshake);
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Deadline::None;
        }
        self.at(self.last_active_ms.load(Ordering::Relaxed), idle)
    }

    fn at(&self, since_ms: u64, limit: Duration) -> Deadline {
        let at = self.epoch + Duration::from_millis(since_ms) + limit;
        if at <= Instant::now() {
            Deadline::Now
        } else {
            Deadline::At(at)
        }
    }
}

/// The open connections of one listener.
#[derive(Debug)]
pub(crate) struct Registry {
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }
}

impl Registry {
    /// How many connections are open.
    pub(crate) fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Records a connection accepted now.
    pub(crate) fn open(&self) -> Arc<Activity> {
        let activity = Arc::new(Activity {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            accepted_ms: self.epoch.elapsed().as_millis() as u64,
            last_active_ms: AtomicU64::new(0),
            handshaken: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            epoch: self.epoch,
            waker: Mutex::new(None),
        });
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(activity.id, activity.clone());
        activity
    }

    /// Forgets a closed connection.
    pub(crate) fn closed(&self, activity: &Activity) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&activity.id);
    }

    /// Closes the connection that matters least, if any may go: the oldest
    /// that has not finished its handshake, else the one idle longest.
    /// Returns whether one was chosen.
    pub(crate) fn evict_one(&self) -> bool {
        let victim = {
            let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            open.values()
                .filter(|a| {
                    !a.closing.load(Ordering::Relaxed) && a.in_flight.load(Ordering::Acquire) == 0
                })
                .min_by_key(|a| {
                    let handshaken = a.handshaken.load(Ordering::Relaxed);
                    let since = if handshaken {
                        a.last_active_ms.load(Ordering::Relaxed)
                    } else {
                        a.accepted_ms
                    };
                    (handshaken, since)
                })
                .cloned()
        };
        match victim {
            Some(victim) => {
                victim.close();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn a_connection_without_a_handshake_goes_first_and_a_busy_one_never() {
        let registry = Registry::default();
        let busy = registry.open();
        busy.handshake_done();
        busy.call_started();
        let idle = registry.open();
        idle.handshake_done();
        let silent = registry.open();
        assert!(registry.evict_one());
        assert_eq!(silent.deadline(LONG, LONG), Deadline::Now);
        assert!(matches!(idle.deadline(LONG, LONG), Deadline::At(_)));
        assert!(registry.evict_one());
        assert_eq!(idle.deadline(LONG, LONG), Deadline::Now);
        // Only the busy one is left, and it stays.
        assert!(!registry.evict_one());
        assert_eq!(busy.deadline(LONG, LONG), Deadline::None);
        busy.call_ended();
        assert!(matches!(busy.deadline(LONG, LONG), Deadline::At(_)));
        registry.closed(&silent);
        assert_eq!(registry.len(), 2);
    }

    #[test]
    fn deadlines_follow_the_handshake_and_the_last_call() {
        let registry = Registry::default();
        let conn = registry.open();
        assert_eq!(conn.deadline(Duration::ZERO, LONG), Deadline::Now);
        conn.handshake_done();
        assert!(matches!(
            conn.deadline(Duration::ZERO, LONG),
            Deadline::At(_)
        ));
        assert_eq!(conn.deadline(LONG, Duration::ZERO), Deadline::Now);
        conn.call_started();
        assert_eq!(conn.deadline(LONG, Duration::ZERO), Deadline::None);
    }
}
