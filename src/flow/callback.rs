//! What a provider's callback amounts to, decided before anything is sent:
//! a refusal, a pending email verification, or a code to exchange.

use std::collections::BTreeMap;

/// Why a CompleteAuth state cannot be used, as the caller is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateProblem {
    /// Never issued, already used, or issued to another caller: the answer
    /// must not tell a caller that someone else's state is live.
    Unknown,
    /// Past its lifetime.
    Expired,
    /// The callback's `iss` is not the provider's issuer (RFC 9207), or is
    /// missing where the provider requires it: a mix-up attack, or a
    /// misconfiguration.
    IssuerMismatch,
}

impl StateProblem {
    /// The metadata value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::IssuerMismatch => "issuer_mismatch",
        }
    }
}

/// What a stored state allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateCheck {
    /// The caller's own, in time: take it.
    Usable,
    /// The caller's own, too late: consume it and refuse.
    Expired,
    /// Another caller's: leave it untouched and answer as if unknown.
    Foreign,
}

/// What a stored state allows at `now`: it must belong to `caller` and not
/// have expired.
pub(crate) fn check_state(now: i64, owner: &str, caller: &str, expires_at: i64) -> StateCheck {
    if owner != caller {
        StateCheck::Foreign
    } else if expires_at <= now {
        StateCheck::Expired
    } else {
        StateCheck::Usable
    }
}

/// Whether the callback's `iss` (RFC 9207) fits the provider: equal to its
/// issuer when both are known; present when the provider requires it.
pub(crate) fn check_issuer(
    expected: Option<&str>,
    required: bool,
    presented: Option<&str>,
) -> Result<(), StateProblem> {
    match (expected, presented) {
        (Some(expected), Some(iss)) if iss != expected => Err(StateProblem::IssuerMismatch),
        (_, None) if required => Err(StateProblem::IssuerMismatch),
        _ => Ok(()),
    }
}

/// The callback parameters that decide its meaning.
pub(crate) struct CallbackParams<'a> {
    /// The `error` parameter.
    pub(crate) error: Option<&'a str>,
    /// Whether a `code` came.
    pub(crate) has_code: bool,
    /// Every other parameter.
    pub(crate) params: &'a BTreeMap<String, String>,
    /// The parameter that carries a pending verification's account id, if
    /// the provider has that flow.
    pub(crate) pending_param: Option<&'a str>,
}

/// What the callback means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CallbackKind {
    /// The user or the provider refused.
    Denied,
    /// A new account must verify its email first; carries its provider id.
    PendingVerification(String),
    /// Exchange the code.
    Code,
    /// Neither a code, an error nor a pending verification.
    Incomplete,
}

/// Classifies a callback. An error wins over a code: a provider that sends
/// both has refused.
pub(crate) fn classify_callback(p: &CallbackParams<'_>) -> CallbackKind {
    if p.error.is_some() {
        return CallbackKind::Denied;
    }
    if p.has_code {
        return CallbackKind::Code;
    }
    match p
        .pending_param
        .and_then(|name| p.params.get(name))
        .filter(|id| !id.is_empty())
    {
        Some(id) => CallbackKind::PendingVerification(id.clone()),
        None => CallbackKind::Incomplete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(
        error: Option<&str>,
        has_code: bool,
        params: &[(&str, &str)],
        pending: Option<&str>,
    ) -> CallbackKind {
        let params = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        classify_callback(&CallbackParams {
            error,
            has_code,
            params: &params,
            pending_param: pending,
        })
    }

    #[test]
    fn every_kind() {
        assert_eq!(
            classify(Some("access_denied"), true, &[], None),
            CallbackKind::Denied
        );
        assert_eq!(
            classify(None, true, &[], Some("userId")),
            CallbackKind::Code
        );
        assert_eq!(
            classify(None, false, &[("userId", "u1")], Some("userId")),
            CallbackKind::PendingVerification("u1".into())
        );
        assert_eq!(
            classify(None, false, &[("userId", "")], Some("userId")),
            CallbackKind::Incomplete
        );
        assert_eq!(
            classify(None, false, &[("userId", "u1")], None),
            CallbackKind::Incomplete
        );
    }

    #[test]
    fn issuers() {
        let issuer = Some("https://idp.example.com");
        assert_eq!(
            check_issuer(issuer, false, Some("https://idp.example.com")),
            Ok(())
        );
        assert_eq!(check_issuer(issuer, false, None), Ok(()));
        assert_eq!(
            check_issuer(issuer, false, Some("https://evil.example.com")),
            Err(StateProblem::IssuerMismatch)
        );
        assert_eq!(
            check_issuer(issuer, true, None),
            Err(StateProblem::IssuerMismatch)
        );
        // Without a known issuer there is nothing to compare against.
        assert_eq!(check_issuer(None, false, Some("https://any")), Ok(()));
    }

    #[test]
    fn states() {
        assert_eq!(check_state(100, "a", "a", 101), StateCheck::Usable);
        assert_eq!(check_state(101, "a", "a", 101), StateCheck::Expired);
        assert_eq!(check_state(100, "a", "b", 101), StateCheck::Foreign);
        // Another caller's expired state is still only foreign to this one.
        assert_eq!(check_state(101, "a", "b", 101), StateCheck::Foreign);
    }
}
