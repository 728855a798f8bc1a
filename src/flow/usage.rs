//! The usage ledger's decisions: what an existing row with the same key
//! means for a new call, and what a provider's answer means for the row.

use serde_json::{Map, Value};

use super::token_response::ProviderFailure;
use crate::domain::UsageStatus;

/// What to do about an existing ledger row with the caller's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnExisting {
    /// The key was used for a different request.
    Conflict,
    /// Return the stored confirmation.
    Replay,
    /// Return the stored refusal.
    Rejected,
    /// An earlier attempt may have been recorded: refuse to guess.
    OutcomeUnknown,
    /// Nothing was recorded: claim the row and try again.
    ClaimRetry,
    /// A pending claim whose holder died after sending (or, for a claim
    /// without a holder recorded, older than any attempt can last): the
    /// outcome is unknown.
    MarkUnknown,
    /// A pending claim whose holder died before sending: nothing reached the
    /// provider, so take the claim over and report.
    ReclaimUnsent,
    /// Another attempt is in flight: look again shortly.
    Wait,
    /// Waited as long as a call may: report the attempt as still running.
    GiveUp,
}

/// The existing row as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LedgerSnapshot {
    /// Its status.
    pub(crate) status: UsageStatus,
    /// When it last changed (Unix seconds).
    pub(crate) updated_at: i64,
    /// Whether it records the same connection, usage and credits.
    pub(crate) same_request: bool,
    /// When a pending claim lapses unless its holder renews it; `None` for
    /// claims from before claims had holders.
    pub(crate) claim_until: Option<i64>,
    /// The claim's holder is known dead (an earlier incarnation of this process).
    pub(crate) holder_dead: bool,
    /// The pending attempt's request went to the provider.
    pub(crate) sent: bool,
}

/// Decides about an existing row. `stale_after_secs` is longer than any
/// attempt can last; `waited_out` says this call has waited its limit.
pub(crate) fn on_existing(
    now: i64,
    row: LedgerSnapshot,
    stale_after_secs: i64,
    waited_out: bool,
) -> OnExisting {
    if !row.same_request {
        return OnExisting::Conflict;
    }
    match row.status {
        UsageStatus::Succeeded => OnExisting::Replay,
        UsageStatus::Rejected => OnExisting::Rejected,
        UsageStatus::Unknown => OnExisting::OutcomeUnknown,
        UsageStatus::Retryable => OnExisting::ClaimRetry,
        UsageStatus::Pending => {
            let holder_gone = match row.claim_until {
                Some(until) => until <= now || row.holder_dead,
                None => row.updated_at < now - stale_after_secs,
            };
            match (holder_gone, row.sent || row.claim_until.is_none()) {
                (true, true) => OnExisting::MarkUnknown,
                (true, false) => OnExisting::ReclaimUnsent,
                (false, _) if waited_out => OnExisting::GiveUp,
                (false, _) => OnExisting::Wait,
            }
        }
    }
}

/// What a usage call's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UsageVerdict {
    /// Recorded.
    Succeeded,
    /// The token was refused (401): the provider recorded nothing; refresh
    /// the token once and call again.
    RetryWithFreshToken,
    /// Refused for good (e.g. insufficient credits).
    Rejected,
    /// Certainly not recorded (unreachable, 429, 503): the key may try again.
    Retryable,
    /// May have been recorded (timeout after sending, other 5xx, garbage).
    Unknown,
}

/// Classifies a usage call's answer; `token_refreshed` says the one retry
/// with a fresh token was already spent.
pub(crate) fn classify_usage_answer(
    answer: &Result<Map<String, Value>, ProviderFailure>,
    token_refreshed: bool,
) -> UsageVerdict {
    match answer {
        Ok(_) => UsageVerdict::Succeeded,
        Err(ProviderFailure::Rejected {
            http_status: 401, ..
        }) if !token_refreshed => UsageVerdict::RetryWithFreshToken,
        Err(ProviderFailure::Rejected { .. }) => UsageVerdict::Rejected,
        Err(failure) if failure.is_retry_safe() => UsageVerdict::Retryable,
        Err(_) => UsageVerdict::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::token_response::OAuthError;

    const NOW: i64 = 1_000;

    fn row(status: UsageStatus, updated_at: i64) -> LedgerSnapshot {
        LedgerSnapshot {
            status,
            updated_at,
            same_request: true,
            claim_until: None,
            holder_dead: false,
            sent: false,
        }
    }

    #[test]
    fn pending_claims_with_holders() {
        let claim = |until: i64, dead: bool, sent: bool| LedgerSnapshot {
            claim_until: Some(until),
            holder_dead: dead,
            sent,
            ..row(UsageStatus::Pending, NOW - 1_000)
        };
        // Live holder: wait (age does not matter), then give up.
        assert_eq!(
            on_existing(NOW, claim(NOW + 5, false, true), 60, false),
            OnExisting::Wait
        );
        assert_eq!(
            on_existing(NOW, claim(NOW + 5, false, true), 60, true),
            OnExisting::GiveUp
        );
        // Lapsed, or an earlier incarnation: unknown after sending, reclaimed before.
        assert_eq!(
            on_existing(NOW, claim(NOW, false, true), 60, false),
            OnExisting::MarkUnknown
        );
        assert_eq!(
            on_existing(NOW, claim(NOW, false, false), 60, false),
            OnExisting::ReclaimUnsent
        );
        assert_eq!(
            on_existing(NOW, claim(NOW + 5, true, false), 60, false),
            OnExisting::ReclaimUnsent
        );
        assert_eq!(
            on_existing(NOW, claim(NOW + 5, true, true), 60, false),
            OnExisting::MarkUnknown
        );
    }

    #[test]
    fn existing_rows() {
        let mut other = row(UsageStatus::Succeeded, NOW);
        other.same_request = false;
        assert_eq!(on_existing(NOW, other, 60, false), OnExisting::Conflict);
        for (status, expected) in [
            (UsageStatus::Succeeded, OnExisting::Replay),
            (UsageStatus::Rejected, OnExisting::Rejected),
            (UsageStatus::Unknown, OnExisting::OutcomeUnknown),
            (UsageStatus::Retryable, OnExisting::ClaimRetry),
            (UsageStatus::Pending, OnExisting::Wait),
        ] {
            assert_eq!(on_existing(NOW, row(status, NOW), 60, false), expected);
        }
        assert_eq!(
            on_existing(NOW, row(UsageStatus::Pending, NOW - 61), 60, false),
            OnExisting::MarkUnknown
        );
        assert_eq!(
            on_existing(NOW, row(UsageStatus::Pending, NOW - 60), 60, true),
            OnExisting::GiveUp
        );
    }

    fn rejected(http_status: u16) -> Result<Map<String, Value>, ProviderFailure> {
        Err(ProviderFailure::Rejected {
            http_status,
            error: OAuthError::Unspecified,
            description: None,
        })
    }

    fn unavailable(retry_safe: bool) -> Result<Map<String, Value>, ProviderFailure> {
        Err(ProviderFailure::Unavailable {
            http_status: None,
            reason: "x".into(),
            retry_after: None,
            retry_safe,
        })
    }

    #[test]
    fn answers() {
        assert_eq!(
            classify_usage_answer(&Ok(Map::new()), false),
            UsageVerdict::Succeeded
        );
        assert_eq!(
            classify_usage_answer(&rejected(401), false),
            UsageVerdict::RetryWithFreshToken
        );
        assert_eq!(
            classify_usage_answer(&rejected(401), true),
            UsageVerdict::Rejected
        );
        assert_eq!(
            classify_usage_answer(&rejected(402), false),
            UsageVerdict::Rejected
        );
        assert_eq!(
            classify_usage_answer(&unavailable(true), false),
            UsageVerdict::Retryable
        );
        assert_eq!(
            classify_usage_answer(&unavailable(false), false),
            UsageVerdict::Unknown
        );
        let garbage = Err(ProviderFailure::Malformed {
            http_status: Some(200),
            reason: "html".into(),
        });
        assert_eq!(
            classify_usage_answer(&garbage, false),
            UsageVerdict::Unknown
        );
    }
}
