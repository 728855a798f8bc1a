//! Whether a stored access token can be served or must be refreshed.

/// The decision for one GetAccessToken call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// The stored token stays valid long enough.
    Fresh,
    /// Refresh first.
    Refresh,
}

/// Decides from the token's expiry (Unix seconds; `None` when unknown), the
/// current time and how long the caller needs the token to live.
pub(crate) fn freshness(
    now: i64,
    expires_at: Option<i64>,
    min_valid_secs: i64,
    force: bool,
) -> Freshness {
    match expires_at {
        _ if force => Freshness::Refresh,
        Some(exp) if exp - now >= min_valid_secs => Freshness::Fresh,
        _ => Freshness::Refresh,
    }
}

/// When a token issued at `now` expires: `expires_in` if the provider said,
/// else the profile's default lifetime (a missing `expires_in` must not mean
/// "never refresh").
pub(crate) fn expires_at(now: i64, expires_in: Option<u64>, default_lifetime_secs: u64) -> i64 {
    let secs = expires_in
        .unwrap_or(default_lifetime_secs)
        .min(10 * 365 * 86_400);
    now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        assert_eq!(freshness(1000, Some(1100), 60, false), Freshness::Fresh);
        assert_eq!(freshness(1000, Some(1060), 60, false), Freshness::Fresh);
        assert_eq!(freshness(1000, Some(1059), 60, false), Freshness::Refresh);
        assert_eq!(freshness(1000, Some(900), 0, false), Freshness::Refresh);
        assert_eq!(freshness(1000, Some(5000), 60, true), Freshness::Refresh);
        assert_eq!(freshness(1000, None, 60, false), Freshness::Refresh);
    }

    #[test]
    fn missing_expires_in_uses_default() {
        assert_eq!(expires_at(1000, Some(30), 3600), 1030);
        assert_eq!(expires_at(1000, None, 3600), 4600);
    }
}
