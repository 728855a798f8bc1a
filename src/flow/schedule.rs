//! When the background refresher renews a connection: the instant stored
//! with its tokens (`refresh_due_at`), from which replicas claim due work.

/// What the schedule depends on besides the tokens themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cadence {
    /// Renew tokens expiring within this many seconds.
    pub(crate) window_secs: i64,
    /// Renew at least this often even when the access token lives long
    /// (providers that expire refresh tokens left unused).
    pub(crate) max_idle_secs: Option<i64>,
}

/// The share of the lead time (from issue to the window edge) over which
/// refreshes are spread, so connections created together do not all come
/// due in the same second.
const JITTER_SHARE: f64 = 0.2;

/// When tokens issued at `issued_at` and expiring at `expires_at` should be
/// renewed: at the window edge, or past half their life for tokens that
/// live shorter than the window (so they are not renewed on every pass),
/// moved earlier by `jitter` (0..1) times a fifth of the lead time; and no
/// later than `max_idle_secs` after issue. `None` without a refresh token:
/// nothing to renew with.
pub(crate) fn refresh_due_at(
    issued_at: i64,
    expires_at: i64,
    has_refresh_token: bool,
    cadence: Cadence,
    jitter: f64,
) -> Option<i64> {
    if !has_refresh_token {
        return None;
    }
    let lifetime = (expires_at - issued_at).max(0);
    let edge = (expires_at - cadence.window_secs).max(issued_at + lifetime / 2);
    let lead = edge - issued_at;
    let spread = (lead as f64 * JITTER_SHARE * jitter.clamp(0.0, 1.0)) as i64;
    let due = edge - spread;
    Some(match cadence.max_idle_secs {
        Some(idle) => due.min(issued_at + idle),
        None => due,
    })
}

/// Whether a claimed connection is really due at `now`: its row may predate
/// the schedule (stored as due at once) or the window may have changed. Any
/// instant the jitter could have picked counts: from the earliest (full
/// jitter) on.
pub(crate) fn is_due(now: i64, issued_at: i64, expires_at: i64, cadence: Cadence) -> bool {
    refresh_due_at(issued_at, expires_at, true, cadence, 1.0).is_some_and(|due| due <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_MINUTES: Cadence = Cadence {
        window_secs: 300,
        max_idle_secs: None,
    };

    #[test]
    fn an_hour_token_is_due_at_the_window_edge() {
        assert_eq!(
            refresh_due_at(1000, 4600, true, FIVE_MINUTES, 0.0),
            Some(4300)
        );
        // Jitter moves it earlier, by at most a fifth of the lead time.
        assert_eq!(
            refresh_due_at(1000, 4600, true, FIVE_MINUTES, 1.0),
            Some(4300 - 660)
        );
        let jittered = refresh_due_at(1000, 4600, true, FIVE_MINUTES, 0.5).expect("due");
        assert!((3640..4300).contains(&jittered));
    }

    #[test]
    fn a_token_shorter_than_the_window_is_due_past_half_its_life() {
        assert_eq!(
            refresh_due_at(1000, 1060, true, FIVE_MINUTES, 0.0),
            Some(1030)
        );
        assert_eq!(
            refresh_due_at(1000, 1060, true, FIVE_MINUTES, 1.0),
            Some(1024)
        );
    }

    #[test]
    fn idle_keep_alive_caps_a_long_lived_token() {
        let cadence = Cadence {
            window_secs: 300,
            max_idle_secs: Some(86_400),
        };
        let year = 365 * 86_400;
        assert_eq!(
            refresh_due_at(1000, 1000 + year, true, cadence, 0.3),
            Some(1000 + 86_400)
        );
        // A token that expires first is renewed for that reason.
        assert_eq!(refresh_due_at(1000, 4600, true, cadence, 0.0), Some(4300));
    }

    #[test]
    fn nothing_is_due_without_a_refresh_token() {
        assert_eq!(refresh_due_at(1000, 4600, false, FIVE_MINUTES, 0.0), None);
    }

    #[test]
    fn due_from_the_earliest_jittered_instant() {
        assert!(is_due(5000, 1000, 4600, FIVE_MINUTES));
        // The window edge is 4300; the jitter may move it 660 s earlier.
        assert!(is_due(4300, 1000, 4600, FIVE_MINUTES));
        assert!(is_due(3640, 1000, 4600, FIVE_MINUTES));
        assert!(!is_due(3639, 1000, 4600, FIVE_MINUTES));
        // Every instant the jitter picks is due when it comes.
        for jitter in [0.0, 0.25, 0.5, 0.99, 1.0] {
            let due = refresh_due_at(1000, 4600, true, FIVE_MINUTES, jitter).expect("due");
            assert!(is_due(due, 1000, 4600, FIVE_MINUTES), "{jitter}");
        }
        // A short token: from 1024 (half its life, less the jitter).
        assert!(is_due(1024, 1000, 1060, FIVE_MINUTES));
        assert!(!is_due(1023, 1000, 1060, FIVE_MINUTES));
    }
}
