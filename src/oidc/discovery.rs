//! OpenID Connect Discovery 1.0: the issuer's metadata document, checked
//! the way §4.3 asks (it must name exactly the configured issuer, or it is
//! another issuer's) and every endpoint held to the rule for provider URLs.

use serde::Deserialize;

use crate::{
    flow::{
        Classify, ProviderFailure,
        answer::{StatusClass, classify_status},
    },
    providers::ClientAuth,
};

/// Where an issuer publishes its metadata (§4.1): the issuer with any
/// trailing slash removed, then the well-known path.
pub(crate) fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// The metadata authbroker uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Discovered {
    /// `authorization_endpoint`.
    pub(crate) authorize_url: String,
    /// `token_endpoint`.
    pub(crate) token_url: String,
    /// `userinfo_endpoint`, if any.
    pub(crate) userinfo_url: Option<String>,
    /// `revocation_endpoint` (RFC 8414), if any.
    pub(crate) revocation_url: Option<String>,
    /// `jwks_uri`.
    pub(crate) jwks_uri: String,
    /// From `token_endpoint_auth_methods_supported`: Basic unless only
    /// `client_secret_post` is offered.
    pub(crate) client_auth: ClientAuth,
    /// `authorization_response_iss_parameter_supported` (RFC 9207): the
    /// callback then must carry `iss`.
    pub(crate) iss_parameter: bool,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    jwks_uri: Option<String>,
    revocation_endpoint: Option<String>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

/// Reads the discovery answer of `issuer`.
pub(crate) fn parse_discovery(
    issuer: &str,
    status: u16,
    body: &[u8],
    retry_after: Option<u64>,
) -> Result<Discovered, ProviderFailure> {
    let malformed = |reason: String| ProviderFailure::Malformed {
        http_status: Some(status),
        reason,
    };
    match classify_status(status) {
        StatusClass::Success => {}
        StatusClass::Unavailable { retry_safe } => {
            return Err(ProviderFailure::Unavailable {
                http_status: Some(status),
                reason: format!("discovery answered HTTP {status}"),
                retry_after,
                retry_safe,
            });
        }
        StatusClass::Rejected => {
            return Err(malformed(format!(
                "discovery answered HTTP {status}: is the issuer right?"
            )));
        }
    }
    let metadata: Metadata = serde_json::from_slice(body).map_err(|e| {
        malformed(format!(
            "discovery document is not valid JSON ({})",
            e.classify_str()
        ))
    })?;
    // §4.3: "MUST be identical"; anything else is another issuer's
    // document (a mix-up) or a misconfiguration.
    match metadata.issuer.as_deref() {
        Some(named) if named == issuer => {}
        Some(named) => {
            return Err(malformed(format!(
                "discovery document names issuer {:?}, not the configured {issuer:?}",
                shorten(named)
            )));
        }
        None => return Err(malformed("discovery document has no issuer".into())),
    }
    let endpoint = |name: &str, value: Option<String>| -> Result<String, ProviderFailure> {
        let url = value
            .filter(|u| !u.is_empty())
            .ok_or_else(|| malformed(format!("discovery document has no {name}")))?;
        crate::config::check_provider_url(&url)
            .map_err(|e| malformed(format!("discovery {name} {:?}: {e}", shorten(&url))))?;
        Ok(url)
    };
    let optional = |name: &str, value: Option<String>| {
        value
            .filter(|u| !u.is_empty())
            .map(|url| endpoint(name, Some(url)))
            .transpose()
    };
    let client_auth = match metadata.token_endpoint_auth_methods_supported.as_deref() {
        // §3: the default is client_secret_basic.
        None => ClientAuth::Basic,
        Some(methods) if methods.iter().any(|m| m == "client_secret_basic") => ClientAuth::Basic,
        Some(methods) if methods.iter().any(|m| m == "client_secret_post") => ClientAuth::Body,
        Some(_) => {
            return Err(malformed(
                "the token endpoint offers neither client_secret_basic nor client_secret_post"
                    .into(),
            ));
        }
    };
    Ok(Discovered {
        authorize_url: endpoint("authorization_endpoint", metadata.authorization_endpoint)?,
        token_url: endpoint("token_endpoint", metadata.token_endpoint)?,
        userinfo_url: optional("userinfo_endpoint", metadata.userinfo_endpoint)?,
        revocation_url: optional("revocation_endpoint", metadata.revocation_endpoint)?,
        jwks_uri: endpoint("jwks_uri", metadata.jwks_uri)?,
        client_auth,
        iss_parameter: metadata.authorization_response_iss_parameter_supported,
    })
}

/// Provider text in a message: bounded.
fn shorten(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://id.example.com";

    fn document(overrides: serde_json::Value) -> Vec<u8> {
        let mut doc = serde_json::json!({
            "issuer": ISSUER,
            "authorization_endpoint": "https://id.example.com/auth",
            "token_endpoint": "https://id.example.com/token",
            "jwks_uri": "https://id.example.com/jwks",
            "revocation_endpoint": "https://id.example.com/revoke",
        });
        for (k, v) in overrides.as_object().expect("object") {
            doc[k] = v.clone();
        }
        serde_json::to_vec(&doc).expect("json")
    }

    fn reason(result: Result<Discovered, ProviderFailure>) -> String {
        match result {
            Err(ProviderFailure::Malformed { reason, .. }) => reason,
            other => panic!("expected a malformed answer, got {other:?}"),
        }
    }

    #[test]
    fn reads_the_endpoints() {
        let d = parse_discovery(ISSUER, 200, &document(serde_json::json!({})), None)
            .expect("discovered");
        assert_eq!(d.token_url, "https://id.example.com/token");
        assert_eq!(
            d.revocation_url.as_deref(),
            Some("https://id.example.com/revoke")
        );
        assert_eq!(d.userinfo_url, None);
        assert_eq!(d.client_auth, ClientAuth::Basic);
        assert!(!d.iss_parameter);
        assert_eq!(
            discovery_url("https://id.example.com/"),
            "https://id.example.com/.well-known/openid-configuration"
        );
    }

    #[test]
    fn another_issuers_document_is_refused() {
        let doc = document(serde_json::json!({"issuer": "https://evil.example.com"}));
        assert!(reason(parse_discovery(ISSUER, 200, &doc, None)).contains("evil.example.com"));
        // Not even a trailing slash of difference (§4.3: identical).
        let doc = document(serde_json::json!({"issuer": "https://id.example.com/"}));
        assert!(reason(parse_discovery(ISSUER, 200, &doc, None)).contains("names issuer"));
    }

    #[test]
    fn plaintext_endpoints_and_missing_ones_are_refused() {
        let doc = document(serde_json::json!({"token_endpoint": "http://id.example.com/token"}));
        assert!(reason(parse_discovery(ISSUER, 200, &doc, None)).contains("token_endpoint"));
        let doc = document(serde_json::json!({"jwks_uri": null}));
        assert!(reason(parse_discovery(ISSUER, 200, &doc, None)).contains("jwks_uri"));
        assert!(reason(parse_discovery(ISSUER, 200, b"<html>", None)).contains("JSON"));
        assert!(matches!(
            parse_discovery(ISSUER, 503, b"", Some(3)),
            Err(ProviderFailure::Unavailable { .. })
        ));
    }

    #[test]
    fn client_authentication_follows_the_offered_methods() {
        let doc = document(
            serde_json::json!({"token_endpoint_auth_methods_supported": ["client_secret_post"]}),
        );
        let d = parse_discovery(ISSUER, 200, &doc, None).expect("discovered");
        assert_eq!(d.client_auth, ClientAuth::Body);
        let doc = document(
            serde_json::json!({"token_endpoint_auth_methods_supported": ["private_key_jwt"]}),
        );
        assert!(reason(parse_discovery(ISSUER, 200, &doc, None)).contains("client_secret"));
    }
}
