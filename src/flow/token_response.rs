//! Reading a token endpoint's answer (RFC 6749 §5.1, §5.2). Anything that is
//! not a well-formed success becomes a [`ProviderFailure`] that says which
//! kind of failure it was, without echoing tokens.

use serde::Deserialize;

use super::answer::{StatusClass, classify_status, shorten};
use crate::domain::{AccessToken, IdToken, RefreshToken};

/// A successful token answer.
pub(crate) struct TokenSet {
    /// The new access token.
    pub(crate) access_token: AccessToken,
    /// A new refresh token, when the provider issued one (rotation).
    pub(crate) refresh_token: Option<RefreshToken>,
    /// Usually "Bearer".
    pub(crate) token_type: String,
    /// Lifetime in seconds, when the provider said.
    pub(crate) expires_in: Option<u64>,
    /// Granted scopes, when the provider said.
    pub(crate) scope: Option<String>,
    /// The OpenID `id_token`, when the provider sent one.
    pub(crate) id_token: Option<IdToken>,
}

/// RFC 6749 §5.2 error codes, with a catch-all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OAuthError {
    /// The grant (code, refresh token, password) is invalid, expired or revoked.
    InvalidGrant,
    /// Client authentication failed.
    InvalidClient,
    /// The request is malformed.
    InvalidRequest,
    /// The client may not use this grant.
    UnauthorizedClient,
    /// The grant type is not supported.
    UnsupportedGrantType,
    /// The scope is invalid.
    InvalidScope,
    /// Any other code.
    Other(String),
    /// The answer carried no OAuth error code (a plain HTTP refusal).
    Unspecified,
}

impl OAuthError {
    fn parse(code: &str) -> Self {
        match code {
            "invalid_grant" => Self::InvalidGrant,
            "invalid_client" => Self::InvalidClient,
            "invalid_request" => Self::InvalidRequest,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            other => Self::Other(other.chars().take(64).collect()),
        }
    }

    /// The wire code; empty for [`Self::Unspecified`].
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidClient => "invalid_client",
            Self::InvalidRequest => "invalid_request",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::Other(code) => code,
            Self::Unspecified => "",
        }
    }
}

/// Why a provider call did not yield what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProviderFailure {
    /// The provider refused (4xx).
    Rejected {
        /// The HTTP status.
        http_status: u16,
        /// The OAuth error code, if the answer had one.
        error: OAuthError,
        /// The provider's description or message, shortened.
        description: Option<String>,
    },
    /// The provider could not be reached or failed (timeout, connect error, 5xx, 429).
    Unavailable {
        /// The HTTP status, when it answered.
        http_status: Option<u16>,
        /// What happened, for the caller and the log.
        reason: String,
        /// Seconds the provider asked us to wait (429/503 Retry-After).
        retry_after: Option<u64>,
        /// The provider certainly did not process the request (unreachable,
        /// 429, 503), so sending it again cannot spend a rotated token or
        /// record usage twice.
        retry_safe: bool,
    },
    /// The provider answered with something that is not a valid answer.
    Malformed {
        /// The HTTP status, when it answered.
        http_status: Option<u16>,
        /// What was wrong, never containing the body's secrets.
        reason: String,
    },
}

impl ProviderFailure {
    /// The HTTP status of the answer, if there was one.
    pub(crate) fn http_status(&self) -> Option<u16> {
        match self {
            Self::Rejected { http_status, .. } => Some(*http_status),
            Self::Unavailable { http_status, .. } | Self::Malformed { http_status, .. } => {
                *http_status
            }
        }
    }

    /// Whether the provider certainly did not process the request.
    pub(crate) fn is_retry_safe(&self) -> bool {
        matches!(
            self,
            Self::Unavailable {
                retry_safe: true,
                ..
            }
        )
    }

    /// Removes `secret` from any provider text kept in this failure: a
    /// provider that echoes the grant in its error must not leak it into
    /// statuses, logs or stored reasons.
    pub(crate) fn scrub(self, secret: &str) -> Self {
        match self {
            Self::Rejected {
                http_status,
                error,
                description,
            } if !secret.is_empty() => Self::Rejected {
                http_status,
                error,
                description: description.map(|d| d.replace(secret, "[redacted]")),
            },
            other => other,
        }
    }
}

#[derive(Deserialize)]
struct SuccessBody {
    access_token: Option<String>,
    refresh_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    scope: Option<serde_json::Value>,
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<String>,
    error_description: Option<String>,
    message: Option<String>,
}

/// Interprets a token endpoint answer.
pub(crate) fn parse_token_response(
    status: u16,
    content_type: &str,
    body: &[u8],
    retry_after: Option<u64>,
) -> Result<TokenSet, ProviderFailure> {
    match classify_status(status) {
        StatusClass::Unavailable { retry_safe } => {
            return Err(ProviderFailure::Unavailable {
                http_status: Some(status),
                reason: format!("token endpoint answered HTTP {status}"),
                retry_after,
                retry_safe,
            });
        }
        StatusClass::Rejected => return Err(parse_error(status, body)),
        StatusClass::Success => {}
    }
    let malformed = |reason: String| ProviderFailure::Malformed {
        http_status: Some(status),
        reason,
    };
    if content_type.starts_with("text/html") {
        return Err(malformed(format!(
            "token endpoint answered HTTP {status} with an HTML page"
        )));
    }
    let parsed: SuccessBody = serde_json::from_slice(body).map_err(|e| {
        malformed(format!(
            "token endpoint answered HTTP {status} with invalid JSON ({})",
            e.classify_str()
        ))
    })?;
    let access_token = parsed
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            malformed(format!(
                "token endpoint answered HTTP {status} without access_token"
            ))
        })?;
    let expires_in = match parsed.expires_in {
        None | Some(serde_json::Value::Null) => None,
        // Some providers send the number as a string.
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        Some(v) => v.as_u64(),
    };
    Ok(TokenSet {
        access_token: AccessToken::new(access_token),
        refresh_token: parsed
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(RefreshToken::new),
        token_type: parsed
            .token_type
            .filter(|t| !t.is_empty() && t.len() <= 32)
            .unwrap_or_else(|| "Bearer".into()),
        expires_in,
        scope: parsed.scope.and_then(normalize_scope),
        id_token: parsed.id_token.filter(|t| !t.is_empty()).map(IdToken::new),
    })
}

fn parse_error(status: u16, body: &[u8]) -> ProviderFailure {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    match parsed {
        Some(ErrorBody {
            error: Some(code),
            error_description,
            ..
        }) => ProviderFailure::Rejected {
            http_status: status,
            error: OAuthError::parse(&code),
            description: error_description.map(|d| shorten(&d)),
        },
        // Not RFC 6749 §5.2: keep the status and any message, no raw body.
        Some(ErrorBody { message, .. }) => ProviderFailure::Rejected {
            http_status: status,
            error: if status == 401 {
                OAuthError::InvalidClient
            } else {
                OAuthError::Unspecified
            },
            description: message.map(|m| shorten(&m)),
        },
        None => ProviderFailure::Malformed {
            http_status: Some(status),
            reason: format!("token endpoint answered HTTP {status} without a JSON error"),
        },
    }
}

/// Granted scopes as one space-separated string, whether the provider sent a
/// string (space- or comma-separated) or an array.
fn normalize_scope(value: serde_json::Value) -> Option<String> {
    let parts: Vec<String> = match value {
        serde_json::Value::String(s) => s
            .split([' ', ','])
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => return None,
    };
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// A serde_json error category that cannot contain body content.
pub(crate) trait Classify {
    fn classify_str(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_str(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected shape",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_with_and_without_refresh_and_expiry() {
        let t = parse_token_response(
            200,
            "application/json",
            br#"{"access_token":"a","token_type":"Bearer","expires_in":3599,"refresh_token":"r"}"#,
            None,
        )
        .unwrap_or_else(|_| panic!("valid"));
        assert_eq!(t.access_token.secret(), "a");
        assert_eq!(
            t.refresh_token.as_ref().map(RefreshToken::secret),
            Some("r")
        );
        assert_eq!(t.expires_in, Some(3599));
        let t = parse_token_response(
            200,
            "application/json",
            br#"{"access_token":"a","expires_in":"60"}"#,
            None,
        )
        .unwrap_or_else(|_| panic!("valid"));
        assert!(t.refresh_token.is_none());
        assert_eq!(t.expires_in, Some(60));
        assert_eq!(t.token_type, "Bearer");
    }

    #[test]
    fn scrub_removes_echoed_secrets() {
        let failure = parse_token_response(
            400,
            "application/json",
            br#"{"error":"invalid_grant","error_description":"token rt-123 is revoked"}"#,
            None,
        )
        .err()
        .map(|f| f.scrub("rt-123"));
        assert!(
            matches!(failure, Some(ProviderFailure::Rejected { description: Some(d), .. }) if d == "token [redacted] is revoked")
        );
    }

    #[test]
    fn scopes_are_normalized() {
        let parse = |body: &[u8]| {
            parse_token_response(200, "application/json", body, None)
                .unwrap_or_else(|_| panic!("valid"))
                .scope
        };
        assert_eq!(
            parse(br#"{"access_token":"a","scope":"read,write"}"#).as_deref(),
            Some("read write")
        );
        assert_eq!(
            parse(br#"{"access_token":"a","scope":["read","write"]}"#).as_deref(),
            Some("read write")
        );
        assert_eq!(parse(br#"{"access_token":"a","scope":""}"#), None);
    }

    #[test]
    fn failures_are_classified() {
        let invalid = parse_token_response(
            400,
            "application/json",
            br#"{"error":"invalid_grant","error_description":"expired"}"#,
            None,
        );
        assert!(matches!(
            invalid,
            Err(ProviderFailure::Rejected {
                error: OAuthError::InvalidGrant,
                ..
            })
        ));
        assert!(matches!(
            parse_token_response(503, "text/plain", b"down", Some(3)),
            Err(ProviderFailure::Unavailable {
                retry_after: Some(3),
                http_status: Some(503),
                ..
            })
        ));
        assert!(matches!(
            parse_token_response(429, "", b"", None),
            Err(ProviderFailure::Unavailable { .. })
        ));
        assert!(matches!(
            parse_token_response(200, "text/html", b"<html>", None),
            Err(ProviderFailure::Malformed { .. })
        ));
        assert!(matches!(
            parse_token_response(200, "application/json", br#"{"access_token": "#, None),
            Err(ProviderFailure::Malformed { .. })
        ));
        assert!(matches!(
            parse_token_response(200, "application/json", br#"{"token_type":"Bearer"}"#, None),
            Err(ProviderFailure::Malformed { .. })
        ));
        assert!(matches!(
            parse_token_response(400, "text/html", b"<html>", None),
            Err(ProviderFailure::Malformed { .. })
        ));
    }

    #[test]
    fn malformed_reason_never_echoes_the_body() {
        let Err(ProviderFailure::Malformed { reason, .. }) = parse_token_response(
            200,
            "application/json",
            br#"{"access_token": "SECRETTOKEN""#,
            None,
        ) else {
            panic!("expected malformed")
        };
        assert!(!reason.contains("SECRETTOKEN"));
    }
}
