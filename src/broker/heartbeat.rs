//! Keeping a claim alive while work runs: the claim (a refresh lease, a
//! usage claim) is renewed every `period` until the work ends, so a live
//! holder keeps it however long the provider takes, and a dead one loses it
//! within one claim length.

use std::{future::Future, time::Duration};

use crate::flow::liveness::RENEW_EVERY_SECS;

/// How often a holder renews its claim: often enough that a missed renewal
/// is a sign of death within seconds (`flow::liveness`).
pub(crate) const RENEW_EVERY: Duration = Duration::from_secs(RENEW_EVERY_SECS as u64);

/// Runs `work`, calling `renew` every `period` while it runs.
pub(crate) async fn while_renewing<T, R, F>(
    period: Duration,
    work: impl Future<Output = T>,
    mut renew: R,
) -> T
where
    R: FnMut() -> F,
    F: Future<Output = ()>,
{
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            () = tokio::time::sleep(period) => {
                // The work goes on while the claim is renewed: it may hold
                // what the renewal waits for (SQLite's write gate), and a
                // renewal that waited for it would wait forever.
                let renewal = renew();
                tokio::pin!(renewal);
                tokio::select! {
                    done = &mut work => return done,
                    () = &mut renewal => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn the_work_goes_on_while_a_renewal_waits_for_it() {
        // The work holds a lock for longer than a period; the renewal needs
        // it. Were the work not polled during the renewal, neither would end.
        let gate = tokio::sync::Mutex::new(());
        let done = tokio::time::timeout(
            Duration::from_secs(5),
            while_renewing(
                Duration::from_millis(20),
                async {
                    let _held = gate.lock().await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    7
                },
                || async {
                    let _ = gate.lock().await;
                },
            ),
        )
        .await
        .expect("no deadlock");
        assert_eq!(done, 7);
    }

    #[tokio::test]
    async fn renews_while_the_work_runs_and_stops_after() {
        let renewals = AtomicUsize::new(0);
        let done = while_renewing(
            Duration::from_millis(40),
            async {
                tokio::time::sleep(Duration::from_millis(140)).await;
                7
            },
            || async {
                renewals.fetch_add(1, Ordering::SeqCst);
            },
        )
        .await;
        assert_eq!(done, 7);
        // Three periods fit in the work; a slow machine may fit one less.
        let n = renewals.load(Ordering::SeqCst);
        assert!((2..=3).contains(&n), "{n} renewals");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            renewals.load(Ordering::SeqCst),
            n,
            "none after the work ended"
        );
    }
}
