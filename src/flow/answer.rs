//! Reading any provider answer: the one HTTP-status classifier every
//! endpoint shares, and the JSON-object answers of the user and usage
//! endpoints.

use serde_json::{Map, Value};

use super::token_response::{Classify, OAuthError, ProviderFailure};

/// What an HTTP status says about a provider call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusClass {
    /// 2xx.
    Success,
    /// 429 or 5xx: the provider is failing. Only 429 and 503 say it did not
    /// process the request, so that only those are safe to send again.
    Unavailable {
        /// Sending the same request again cannot act twice.
        retry_safe: bool,
    },
    /// Any other status: the provider refused.
    Rejected,
}

/// Classifies an HTTP status.
pub(crate) fn classify_status(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Success,
        429 | 503 => StatusClass::Unavailable { retry_safe: true },
        500..=599 => StatusClass::Unavailable { retry_safe: false },
        _ => StatusClass::Rejected,
    }
}

/// Provider text shown to callers is capped so a hostile answer cannot flood logs.
pub(crate) fn shorten(s: &str) -> String {
    s.chars().take(256).collect()
}

/// Interprets a provider answer that must be a JSON object (user info, usage).
pub(crate) fn json_object(
    status: u16,
    content_type: &str,
    body: &[u8],
    retry_after: Option<u64>,
) -> Result<Map<String, Value>, ProviderFailure> {
    let parsed = serde_json::from_slice::<Value>(body);
    match classify_status(status) {
        StatusClass::Unavailable { retry_safe } => Err(ProviderFailure::Unavailable {
            http_status: Some(status),
            reason: format!("answered HTTP {status}"),
            retry_after,
            retry_safe,
        }),
        StatusClass::Rejected => {
            let value = parsed.ok();
            let text = |key: &str| {
                value
                    .as_ref()
                    .and_then(|v| v.get(key))
                    .and_then(Value::as_str)
                    .map(shorten)
            };
            Err(ProviderFailure::Rejected {
                http_status: status,
                error: text("error")
                    .filter(|e| !e.is_empty())
                    .map_or(OAuthError::Unspecified, OAuthError::Other),
                description: text("message")
                    .or_else(|| text("error_description"))
                    .or_else(|| text("error")),
            })
        }
        StatusClass::Success if content_type.starts_with("text/html") => {
            Err(ProviderFailure::Malformed {
                http_status: Some(status),
                reason: "answered with an HTML page".into(),
            })
        }
        StatusClass::Success => match parsed {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(ProviderFailure::Malformed {
                http_status: Some(status),
                reason: format!("answered HTTP {status} without a JSON object"),
            }),
            Err(e) => Err(ProviderFailure::Malformed {
                http_status: Some(status),
                reason: format!(
                    "answered HTTP {status} without a JSON object ({})",
                    e.classify_str()
                ),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(classify_status(200), StatusClass::Success);
        assert_eq!(classify_status(204), StatusClass::Success);
        assert_eq!(
            classify_status(429),
            StatusClass::Unavailable { retry_safe: true }
        );
        assert_eq!(
            classify_status(503),
            StatusClass::Unavailable { retry_safe: true }
        );
        assert_eq!(
            classify_status(500),
            StatusClass::Unavailable { retry_safe: false }
        );
        assert_eq!(classify_status(401), StatusClass::Rejected);
        assert_eq!(classify_status(302), StatusClass::Rejected);
    }

    #[test]
    fn json_answers() {
        let ok = json_object(200, "application/json", br#"{"id":"u1"}"#, None).expect("object");
        assert_eq!(ok["id"], "u1");
        let Err(ProviderFailure::Rejected {
            http_status,
            error,
            description,
        }) = json_object(
            402,
            "application/json",
            br#"{"message":"Insufficient credits"}"#,
            None,
        )
        else {
            panic!("rejected")
        };
        assert_eq!(http_status, 402);
        assert_eq!(error, OAuthError::Unspecified);
        assert_eq!(description.as_deref(), Some("Insufficient credits"));
        assert!(matches!(
            json_object(500, "", b"", Some(2)),
            Err(ProviderFailure::Unavailable {
                retry_safe: false,
                retry_after: Some(2),
                ..
            })
        ));
        assert!(matches!(
            json_object(200, "text/html", b"<html>", None),
            Err(ProviderFailure::Malformed { .. })
        ));
        assert!(matches!(
            json_object(200, "application/json", b"[1]", None),
            Err(ProviderFailure::Malformed { .. })
        ));
    }
}
