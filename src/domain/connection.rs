//! A connection as the service reasons about it: no lease, no ciphertext.

use super::{Caller, ConnectionId, ProviderId, RedirectUri, Scopes, Subject, secrets::AccessToken};

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionStatus {
    /// Tokens stored and served.
    Active,
    /// The provider refused the refresh token (or a rotation was lost): the
    /// end user must authorize again.
    NeedsReauth,
    /// Tokens deleted on the caller's request.
    Revoked,
}

impl ConnectionStatus {
    /// The stored form.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::NeedsReauth => "NEEDS_REAUTH",
            Self::Revoked => "REVOKED",
        }
    }

    /// Reads the stored form; anything unknown is treated as revoked, the
    /// status that serves nothing.
    pub(crate) fn from_stored(text: &str) -> Self {
        match text {
            "ACTIVE" => Self::Active,
            "NEEDS_REAUTH" => Self::NeedsReauth,
            _ => Self::Revoked,
        }
    }
}

/// One end user's link to one provider account, owned by one caller.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    /// Its id.
    pub(crate) id: ConnectionId,
    /// The calling service it belongs to.
    pub(crate) caller: Caller,
    /// The configured provider.
    pub(crate) provider: ProviderId,
    /// The caller's id for its end user.
    pub(crate) subject: Subject,
    /// The account id at the provider (empty when the provider has no user endpoint).
    pub(crate) provider_user_id: String,
    /// Granted scopes.
    pub(crate) scopes: Scopes,
    /// Where it stands.
    pub(crate) status: ConnectionStatus,
    /// Why the status last changed.
    pub(crate) status_reason: Option<String>,
    /// The redirect URI of the flow that created it (some providers want it on refresh).
    pub(crate) redirect_uri: RedirectUri,
    /// When the stored access token expires (Unix seconds).
    pub(crate) access_token_expires_at: Option<i64>,
    /// The caller's labels.
    pub(crate) labels: super::Labels,
    /// Unix seconds.
    pub(crate) created_at: i64,
    /// Unix seconds.
    pub(crate) updated_at: i64,
}

/// A token handed to a caller.
#[derive(Debug, Clone)]
pub(crate) struct ServedToken {
    /// The token.
    pub(crate) token: AccessToken,
    /// Usually "Bearer".
    pub(crate) token_type: String,
    /// Unix seconds.
    pub(crate) expires_at: i64,
    /// The connection's provider (for the caller's policy).
    pub(crate) provider: ProviderId,
    /// The scopes the token was granted (shared, so a cached token is cheap
    /// to hand out).
    pub(crate) scopes: std::sync::Arc<Scopes>,
}
