//! Wire-level helpers shared by every endpoint: the rejection type (which also feeds `rejections()`),
//! strict parameter parsing, and the Authorization / Content-Type headers.

use std::collections::BTreeMap;

use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

/// Marker put into a response's extensions; the recording layer turns it into a `rejections()` entry.
#[derive(Clone)]
pub(crate) struct RejectReason(pub String);

/// A request the provider refuses, with the answer the provider gives and the reason for the test log.
pub(crate) struct Reject {
    status: StatusCode,
    headers: Vec<(axum::http::HeaderName, String)>,
    body: RejectBody,
    reason: String,
}

enum RejectBody {
    Json(Value),
    Text(String),
}

impl Reject {
    /// RFC 6749 §5.2 error body.
    pub fn oauth(status: StatusCode, error: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let body = json!({ "error": error, "error_description": reason });
        Self {
            status,
            headers: Vec::new(),
            body: RejectBody::Json(body),
            reason,
        }
    }

    pub fn invalid_request(reason: impl Into<String>) -> Self {
        Self::oauth(StatusCode::BAD_REQUEST, "invalid_request", reason)
    }

    /// RFC 6749 §5.2: 401, and a WWW-Authenticate challenge since clients may use Basic.
    pub fn invalid_client(reason: impl Into<String>) -> Self {
        let mut reject = Self::oauth(StatusCode::UNAUTHORIZED, "invalid_client", reason);
        reject
            .headers
            .push((WWW_AUTHENTICATE, "Basic realm=\"oauth\"".into()));
        reject
    }

    pub fn invalid_grant(reason: impl Into<String>) -> Self {
        Self::oauth(StatusCode::BAD_REQUEST, "invalid_grant", reason)
    }

    pub fn invalid_scope(reason: impl Into<String>) -> Self {
        Self::oauth(StatusCode::BAD_REQUEST, "invalid_scope", reason)
    }

    pub fn unsupported_grant_type(reason: impl Into<String>) -> Self {
        Self::oauth(StatusCode::BAD_REQUEST, "unsupported_grant_type", reason)
    }

    /// RFC 6750 §3.1: a resource request without a usable bearer token.
    pub fn invalid_token(reason: impl Into<String>) -> Self {
        let mut reject = Self::oauth(StatusCode::UNAUTHORIZED, "invalid_token", reason);
        reject
            .headers
            .push((WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"".into()));
        reject
    }

    /// The `{"message": ...}` error shape of the ARES partner API (doc 001 lines 61-63).
    pub fn message(status: StatusCode, message: &str, reason: impl Into<String>) -> Self {
        let body = RejectBody::Json(json!({ "message": message }));
        Self {
            status,
            headers: Vec::new(),
            body,
            reason: reason.into(),
        }
    }

    /// An error page shown to the end user (the authorize page cannot redirect anywhere safe).
    pub fn page(status: StatusCode, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let body = RejectBody::Text(reason.clone());
        Self {
            status,
            headers: Vec::new(),
            body,
            reason,
        }
    }

    /// A 302 elsewhere: back to the client with `error=...`, or to the provider's main page.
    pub fn redirect(location: String, reason: impl Into<String>) -> Self {
        let body = RejectBody::Text(String::new());
        let headers = vec![(LOCATION, location)];
        Self {
            status: StatusCode::FOUND,
            headers,
            body,
            reason: reason.into(),
        }
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            RejectBody::Json(value) => (self.status, axum::Json(value)).into_response(),
            RejectBody::Text(text) => (self.status, text).into_response(),
        };
        // RFC 6749 §5.1/§5.2: no answer of a token endpoint may be cached;
        // harmless on the others.
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in self.headers {
            let value = value.parse().expect("fake header values are plain ASCII");
            response.headers_mut().insert(name, value);
        }
        response.extensions_mut().insert(RejectReason(self.reason));
        response
    }
}

/// Request parameters after the RFC 6749 §3.1/§3.2 rules: no parameter twice, and an empty value
/// counts as absent.
pub(super) struct Params(BTreeMap<String, String>);

impl Params {
    /// Builds from decoded pairs, rejecting repeated names.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, Reject> {
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            if map.contains_key(&name) {
                return Err(Reject::invalid_request(format!(
                    "parameter `{name}` sent twice"
                )));
            }
            map.insert(name, value);
        }
        map.retain(|_, value| !value.is_empty());
        Ok(Self(map))
    }

    /// `application/x-www-form-urlencoded` body.
    pub fn from_form(body: &[u8]) -> Result<Self, Reject> {
        let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).map_err(|e| {
            Reject::invalid_request(format!("body is not valid form encoding: {e}"))
        })?;
        Self::from_pairs(pairs)
    }

    /// A JSON object whose values are all strings, as in the documents' examples.
    pub fn from_json(body: &[u8]) -> Result<Self, Reject> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Reject::invalid_request(format!("body is not JSON: {e}")))?;
        let Value::Object(object) = value else {
            return Err(Reject::invalid_request("JSON body is not an object"));
        };
        let mut pairs = Vec::new();
        for (name, value) in object {
            match value {
                Value::String(text) => pairs.push((name, text)),
                other => {
                    return Err(Reject::invalid_request(format!(
                        "`{name}` must be a JSON string, got {other}"
                    )));
                }
            }
        }
        Self::from_pairs(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A parameter the request cannot do without (`invalid_request` when absent).
    pub fn required(&self, name: &str, why: &str) -> Result<&str, Reject> {
        self.get(name)
            .ok_or_else(|| Reject::invalid_request(format!("missing `{name}` ({why})")))
    }
}

/// Rejects a body that is not of the given media type (parameters like charset are allowed).
pub(crate) fn require_content_type(headers: &HeaderMap, expected: &str) -> Result<(), Reject> {
    let actual = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = actual.split(';').next().unwrap_or("").trim();
    if media_type.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(Reject::invalid_request(format!(
            "Content-Type is `{actual}`, this endpoint takes `{expected}`"
        )))
    }
}

/// The token of `Authorization: Bearer <token>` (RFC 6750 §2.1; the scheme is case-insensitive).
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, Reject> {
    let value =
        authorization(headers).ok_or_else(|| Reject::invalid_token("no Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            Ok(token)
        }
        _ => Err(Reject::invalid_token(format!(
            "Authorization `{value}` is not a Bearer token"
        ))),
    }
}

/// `Authorization: Basic base64(id:secret)`, `None` when no Authorization header was sent.
pub(super) fn basic(headers: &HeaderMap) -> Option<Result<(String, String), Reject>> {
    let value = authorization(headers)?;
    let parsed = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, encoded)| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            text.split_once(':')
                .map(|(i, s)| (i.to_owned(), s.to_owned()))
        });
    Some(parsed.ok_or_else(|| {
        Reject::invalid_client(format!(
            "Authorization `{value}` is not Basic base64(id:secret)"
        ))
    }))
}

/// Whether an Authorization header was sent at all.
pub(super) fn has_authorization(headers: &HeaderMap) -> bool {
    headers.contains_key(AUTHORIZATION)
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// Best-effort `grant_type` of a recorded token request body, whatever its encoding.
pub(super) fn grant_type_of(body: &str) -> Option<String> {
    if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(body) {
        return object
            .get("grant_type")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    serde_urlencoded::from_str::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find_map(|(name, value)| (name == "grant_type").then_some(value))
}

/// Random bytes, hex-encoded: the shape of every code and opaque token.
pub(super) fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}
