//! The refresh decisions, apart from the IO that carries them out: given the
//! time and what the row says, serve the stored token, wait for another
//! holder's lease, take the lease and call the provider, or give up; and
//! after the call, store, mark the connection NEEDS_REAUTH, serve the stale
//! token or fail.

use super::{
    expiry::{Freshness, freshness},
    token_response::{OAuthError, ProviderFailure},
};

/// What the connection's row says when a refresh is considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RefreshSnapshot {
    /// The stored access token's expiry (Unix seconds).
    pub(crate) expires_at: Option<i64>,
    /// The row's version (bumped by every token or status write).
    pub(crate) version: i64,
    /// Until when the refresh lease is held, if it is.
    pub(crate) lease_until: Option<i64>,
    /// The recorded lease holder is known dead (an earlier incarnation of
    /// this process), whatever its lease says.
    pub(crate) holder_dead: bool,
    /// When the recorded holder's request went to the provider, if it did.
    pub(crate) sent_at: Option<i64>,
    /// An earlier attempt interrupted after its request was sent,
    /// remembered until new tokens are stored.
    pub(crate) interrupted_at: Option<i64>,
    /// When the stored tokens were issued (Unix seconds).
    pub(crate) issued_at: i64,
}

/// Whether `holder` (a lease owner, `host/pid/incarnation`) is an earlier
/// incarnation of the process named `me`: same host and process id, another
/// incarnation. Two live processes never share host and pid, so such a
/// holder died when this process replaced it.
pub(crate) fn earlier_incarnation(holder: &str, me: &str) -> bool {
    match (holder.rsplit_once('/'), me.rsplit_once('/')) {
        (Some((process, run)), Some((my_process, my_run))) => {
            process == my_process && run != my_run
        }
        _ => false,
    }
}

/// What the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RefreshAsk {
    /// How long the token must stay valid.
    pub(crate) min_valid_secs: i64,
    /// Refresh even if the stored token is fresh.
    pub(crate) force: bool,
    /// The version the caller saw before deciding to refresh, if it read one.
    pub(crate) seen_version: Option<i64>,
    /// A token issued this recently is the freshest there is: a forced
    /// refresh, or one for more than any token lives, serves it instead.
    pub(crate) cooldown_secs: i64,
    /// The background refresher's: it never waits for another holder (who
    /// is renewing the connection already), and its rate slot is taken.
    pub(crate) background: bool,
}

/// The next step before any provider call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The stored token serves.
    Serve,
    /// Take the lease and call the provider. `interrupted_at` is when an
    /// earlier attempt sent its request and never stored the answer.
    TakeLease {
        /// The interrupted attempt's start, if any.
        interrupted_at: Option<i64>,
    },
    /// Another holder's lease is live: look again shortly.
    Wait,
    /// The wait is over and the stored token cannot serve.
    GiveUp,
}

/// Decides the next step. `waited_out` is whether this call has waited as
/// long as it may for another holder.
pub(crate) fn plan(now: i64, row: RefreshSnapshot, ask: RefreshAsk, waited_out: bool) -> Plan {
    let still_valid = row.expires_at.is_some_and(|exp| exp > now);
    // Another caller or replica refreshed while this one waited: that token
    // is as fresh as the provider gives, so it serves this call too (even a
    // forced one, or one asking for more than the token's lifetime).
    let refreshed_meanwhile = ask.seen_version.is_some_and(|v| v != row.version) && still_valid;
    // A caller must not be able to make the connection rotate on every call:
    // a token just issued serves a forced refresh, and a request for more
    // than a fresh token would live, as it is (with its real expiry).
    let just_issued = still_valid && now - row.issued_at < ask.cooldown_secs;
    let beyond_any_token = row
        .expires_at
        .is_some_and(|exp| ask.min_valid_secs > exp - row.issued_at);
    if refreshed_meanwhile
        || (just_issued && (ask.force || beyond_any_token))
        || freshness(now, row.expires_at, ask.min_valid_secs, ask.force) == Freshness::Fresh
    {
        return Plan::Serve;
    }
    if row.holder_dead || row.lease_until.is_none_or(|until| until <= now) {
        // A holder that sent its request and is gone may have had the
        // provider rotate the token; one that never sent left it untouched.
        return Plan::TakeLease {
            interrupted_at: row.interrupted_at.or(row.sent_at),
        };
    }
    if waited_out {
        return if still_valid && !ask.force {
            Plan::Serve
        } else {
            Plan::GiveUp
        };
    }
    Plan::Wait
}

/// With the lease held but no refresh token stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WithoutRefreshToken {
    /// The stored token still works and was not refused: serve it.
    Serve,
    /// A new token was demanded and none can be had.
    Refuse,
    /// The token is dead and cannot be renewed.
    NeedsReauth(&'static str),
}

/// Decides for a connection whose provider issued no refresh token.
pub(crate) fn without_refresh_token(
    now: i64,
    expires_at: Option<i64>,
    force: bool,
) -> WithoutRefreshToken {
    match expires_at {
        Some(exp) if exp > now && force => WithoutRefreshToken::Refuse,
        Some(exp) if exp > now => WithoutRefreshToken::Serve,
        _ => WithoutRefreshToken::NeedsReauth(
            "the access token expired and the provider issued no refresh token",
        ),
    }
}

/// After a failed refresh call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AfterFailure {
    /// The provider refused the refresh token: the user must authorize again.
    NeedsReauth(String),
    /// The provider is failing but the stored token still works: serve it.
    ServeStale,
    /// Return the failure.
    Fail,
}

/// Decides what a failed refresh means.
pub(crate) fn after_failure(
    now: i64,
    expires_at: Option<i64>,
    force: bool,
    failure: &ProviderFailure,
    interrupted_at: Option<i64>,
) -> AfterFailure {
    match failure {
        ProviderFailure::Rejected {
            error: OAuthError::InvalidGrant,
            description,
            ..
        } => {
            let mut reason = match description {
                Some(d) => format!("the provider refused the refresh token (invalid_grant: {d})"),
                None => "the provider refused the refresh token (invalid_grant)".to_owned(),
            };
            if let Some(at) = interrupted_at {
                reason.push_str(&format!(
                    "; a refresh sent at {at} was interrupted before its answer was stored, so the rotated token was lost"
                ));
            }
            AfterFailure::NeedsReauth(reason)
        }
        // A provider outage must not take down callers whose token still
        // works (not when forced: the caller has seen it fail).
        ProviderFailure::Unavailable { .. } | ProviderFailure::Malformed { .. }
            if !force && expires_at.is_some_and(|exp| exp > now) =>
        {
            AfterFailure::ServeStale
        }
        _ => AfterFailure::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 10_000;

    fn row(expires_at: Option<i64>, lease_until: Option<i64>) -> RefreshSnapshot {
        RefreshSnapshot {
            expires_at,
            version: 3,
            lease_until,
            holder_dead: false,
            sent_at: lease_until.map(|u| u - 10),
            interrupted_at: None,
            // Issued long ago: no cooldown applies unless a test says so.
            issued_at: NOW - 86_400,
        }
    }

    fn ask(min_valid_secs: i64, force: bool, seen_version: Option<i64>) -> RefreshAsk {
        RefreshAsk {
            background: false,
            min_valid_secs,
            force,
            seen_version,
            cooldown_secs: 5,
        }
    }

    #[test]
    fn a_just_issued_token_is_not_rotated_again() {
        let mut fresh = row(Some(NOW + 3_600), None);
        fresh.issued_at = NOW - 2;
        // Forced, within the cooldown: served.
        assert_eq!(plan(NOW, fresh, ask(60, true, None), false), Plan::Serve);
        // More than a one-hour token lives: served with its real expiry.
        assert_eq!(
            plan(NOW, fresh, ask(86_400, false, None), false),
            Plan::Serve
        );
        // Past the cooldown both refresh.
        fresh.issued_at = NOW - 5;
        assert!(matches!(
            plan(NOW, fresh, ask(60, true, None), false),
            Plan::TakeLease { .. }
        ));
        assert!(matches!(
            plan(NOW, fresh, ask(86_400, false, None), false),
            Plan::TakeLease { .. }
        ));
        // A short-lived token just issued serves a longer request: a fresh
        // one would not live longer.
        let mut short = row(Some(NOW + 30), None);
        short.issued_at = NOW - 1;
        assert_eq!(plan(NOW, short, ask(60, false, None), false), Plan::Serve);
        // A dead token is never served, however new.
        let mut dead = row(Some(NOW), None);
        dead.issued_at = NOW - 1;
        assert!(matches!(
            plan(NOW, dead, ask(60, true, None), false),
            Plan::TakeLease { .. }
        ));
    }

    #[test]
    fn a_fresh_token_serves() {
        let r = row(Some(NOW + 3600), None);
        assert_eq!(plan(NOW, r, ask(60, false, None), false), Plan::Serve);
    }

    #[test]
    fn a_refresh_by_someone_else_serves_even_a_forced_call() {
        let r = row(Some(NOW + 30), Some(NOW + 5));
        assert_eq!(plan(NOW, r, ask(600, true, Some(2)), false), Plan::Serve);
        // ...but not when that token is already dead.
        let dead = row(Some(NOW - 1), None);
        assert!(matches!(
            plan(NOW, dead, ask(60, false, Some(2)), false),
            Plan::TakeLease { .. }
        ));
    }

    #[test]
    fn a_free_or_lapsed_lease_is_taken() {
        let free = row(Some(NOW + 10), None);
        assert_eq!(
            plan(NOW, free, ask(60, false, None), false),
            Plan::TakeLease {
                interrupted_at: None
            }
        );
        let lapsed = row(Some(NOW + 10), Some(NOW));
        assert_eq!(
            plan(NOW, lapsed, ask(60, false, Some(3)), true),
            Plan::TakeLease {
                interrupted_at: Some(NOW - 10)
            }
        );
        let forced = row(Some(NOW + 3600), None);
        assert!(matches!(
            plan(NOW, forced, ask(60, true, Some(3)), false),
            Plan::TakeLease { .. }
        ));
    }

    #[test]
    fn a_dead_holder_is_taken_over_at_once_and_interruptions_are_remembered() {
        let mut held = row(Some(NOW - 10), Some(NOW + 5));
        held.holder_dead = true;
        assert_eq!(
            plan(NOW, held, ask(60, false, None), false),
            Plan::TakeLease {
                interrupted_at: Some(NOW - 5)
            }
        );
        // A holder that died before sending: a clean retry.
        held.sent_at = None;
        assert_eq!(
            plan(NOW, held, ask(60, false, None), false),
            Plan::TakeLease {
                interrupted_at: None
            }
        );
        // An interruption an earlier resumed attempt met is not forgotten.
        held.interrupted_at = Some(42);
        assert_eq!(
            plan(NOW, held, ask(60, false, None), false),
            Plan::TakeLease {
                interrupted_at: Some(42)
            }
        );
    }

    #[test]
    fn incarnations() {
        assert!(earlier_incarnation("pod-a/1/111", "pod-a/1/222"));
        assert!(!earlier_incarnation("pod-a/1/222", "pod-a/1/222"));
        assert!(!earlier_incarnation("pod-a/7/111", "pod-a/1/222"));
        assert!(!earlier_incarnation("pod-b/1/111", "pod-a/1/222"));
        assert!(!earlier_incarnation("other-replica", "pod-a/1/222"));
    }

    #[test]
    fn a_live_lease_is_waited_for_then_served_or_given_up() {
        let held_valid = row(Some(NOW + 10), Some(NOW + 5));
        assert_eq!(
            plan(NOW, held_valid, ask(60, false, None), false),
            Plan::Wait
        );
        assert_eq!(
            plan(NOW, held_valid, ask(60, false, None), true),
            Plan::Serve
        );
        assert_eq!(
            plan(NOW, held_valid, ask(60, true, None), true),
            Plan::GiveUp
        );
        let held_dead = row(Some(NOW - 10), Some(NOW + 5));
        assert_eq!(
            plan(NOW, held_dead, ask(60, false, None), true),
            Plan::GiveUp
        );
    }

    #[test]
    fn without_a_refresh_token() {
        assert_eq!(
            without_refresh_token(NOW, Some(NOW + 5), false),
            WithoutRefreshToken::Serve
        );
        assert_eq!(
            without_refresh_token(NOW, Some(NOW + 5), true),
            WithoutRefreshToken::Refuse
        );
        assert!(matches!(
            without_refresh_token(NOW, Some(NOW), false),
            WithoutRefreshToken::NeedsReauth(_)
        ));
        assert!(matches!(
            without_refresh_token(NOW, None, false),
            WithoutRefreshToken::NeedsReauth(_)
        ));
    }

    fn unavailable() -> ProviderFailure {
        ProviderFailure::Unavailable {
            http_status: Some(502),
            reason: "answered HTTP 502".into(),
            retry_after: None,
            retry_safe: false,
        }
    }

    #[test]
    fn after_a_failure() {
        let invalid_grant = ProviderFailure::Rejected {
            http_status: 400,
            error: OAuthError::InvalidGrant,
            description: Some("revoked".into()),
        };
        let AfterFailure::NeedsReauth(reason) =
            after_failure(NOW, Some(NOW + 60), false, &invalid_grant, None)
        else {
            panic!("needs reauth")
        };
        assert!(reason.contains("invalid_grant: revoked") && !reason.contains("interrupted"));
        let AfterFailure::NeedsReauth(reason) =
            after_failure(NOW, None, false, &invalid_grant, Some(42))
        else {
            panic!("needs reauth")
        };
        assert!(reason.contains("sent at 42 was interrupted"));

        assert_eq!(
            after_failure(NOW, Some(NOW + 60), false, &unavailable(), None),
            AfterFailure::ServeStale
        );
        let malformed = ProviderFailure::Malformed {
            http_status: Some(200),
            reason: "html".into(),
        };
        assert_eq!(
            after_failure(NOW, Some(NOW + 60), false, &malformed, None),
            AfterFailure::ServeStale
        );
        assert_eq!(
            after_failure(NOW, Some(NOW + 60), true, &unavailable(), None),
            AfterFailure::Fail
        );
        assert_eq!(
            after_failure(NOW, Some(NOW), false, &unavailable(), None),
            AfterFailure::Fail
        );
        let invalid_client = ProviderFailure::Rejected {
            http_status: 401,
            error: OAuthError::InvalidClient,
            description: None,
        };
        assert_eq!(
            after_failure(NOW, Some(NOW + 60), false, &invalid_client, None),
            AfterFailure::Fail
        );
    }
}
