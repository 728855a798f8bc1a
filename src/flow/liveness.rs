//! When a lease holder counts as dead before its lease runs out.
//!
//! A holder (of a refresh lease or a usage claim) renews its lease every
//! [`RENEW_EVERY_SECS`] while it works. On PostgreSQL every process also
//! holds a session lock named after it, which the server drops the moment
//! that session's socket closes, as a killed process's does at once. Either
//! signal alone can lie: a renewal is late when a live process waits for a
//! pooled connection, and a lock session can drop (a proxy, a terminated
//! backend, a server restart) while its process works on. So a holder is
//! dead early only when both say so, and only when the server has been up
//! long enough before the holder's last renewal for a live process to have
//! taken its lock again. Otherwise the lease's own expiry decides, as
//! before: a free lock shortens the wait from one lease to about two
//! seconds, it never makes a live holder look dead on its own.

/// How often a holder renews its lease (whole seconds: leases are stored in
/// Unix seconds). The shortest lease is 3 s, so this is at most a third of it.
pub(crate) const RENEW_EVERY_SECS: i64 = 1;

/// How long after the database server starts a free lock proves nothing:
/// a live process takes its lock again within two pings of one second.
pub(crate) const LOCK_SETTLE_SECS: i64 = 5;

/// Whether a holder that last renewed at `renewed_at` has missed a renewal
/// by `now`: more whole seconds than one period have passed, which leaves a
/// second for whole-second rounding and clock drift between replicas.
pub(crate) fn missed_renewal(now: i64, renewed_at: i64) -> bool {
    now - renewed_at > RENEW_EVERY_SECS
}

/// Whether a holder whose lock is free, and which last renewed at
/// `renewed_at`, is dead: the database server (up since `server_since`) had
/// run long enough before that renewal for a live holder to hold its lock.
pub(crate) fn free_lock_proves_death(renewed_at: i64, server_since: i64) -> bool {
    server_since + LOCK_SETTLE_SECS <= renewed_at
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 10_000;

    #[test]
    fn a_renewal_counts_as_missed_after_one_period_and_a_second() {
        assert!(!missed_renewal(NOW, NOW));
        assert!(!missed_renewal(NOW + 1, NOW));
        assert!(missed_renewal(NOW + 2, NOW));
        assert!(missed_renewal(NOW + 60, NOW));
    }

    #[test]
    fn a_free_lock_proves_nothing_just_after_the_server_started() {
        // Up for an hour before the renewal: the live holder had its lock.
        assert!(free_lock_proves_death(NOW, NOW - 3_600));
        assert!(free_lock_proves_death(NOW, NOW - LOCK_SETTLE_SECS));
        // Restarted shortly before (or after) the renewal: the holder may
        // not have taken its lock again yet.
        assert!(!free_lock_proves_death(NOW, NOW - LOCK_SETTLE_SECS + 1));
        assert!(!free_lock_proves_death(NOW, NOW + 30));
    }
}
