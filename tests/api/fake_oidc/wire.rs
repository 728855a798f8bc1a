//! Wire-level helpers every endpoint shares: the rejection type (which also feeds `rejections()`),
//! strict parameter parsing, the Content-Type and Authorization headers, and random values.

use std::collections::BTreeMap;

use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// Marker put into a response's extensions; the recording layer turns it into a `rejections()` entry.
#[derive(Clone)]
pub(super) struct RejectReason(pub String);

/// A request the provider refuses, with the answer it gives and the reason for the test log.
pub(super) struct Reject {
    status: StatusCode,
    headers: Vec<(HeaderName, String)>,
    body: Body,
    reason: String,
}

enum Body {
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
            body: Body::Json(body),
            reason,
        }
    }

    pub fn invalid_request(reason: impl Into<String>) -> Self {
        Self::oauth(StatusCode::BAD_REQUEST, "invalid_request", reason)
    }

    /// RFC 6749 §5.2: 401, with a Basic challenge since that is how the client authenticates.
    pub fn invalid_client(reason: impl Into<String>) -> Self {
        let mut reject = Self::oauth(StatusCode::UNAUTHORIZED, "invalid_client", reason);
        let challenge = "Basic realm=\"oidc\"".to_owned();
        reject.headers.push((WWW_AUTHENTICATE, challenge));
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
        let challenge = "Bearer error=\"invalid_token\"".to_owned();
        reject.headers.push((WWW_AUTHENTICATE, challenge));
        reject
    }

    /// An error page for the end user (the authorize page cannot redirect anywhere safe).
    pub fn page(status: StatusCode, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self {
            status,
            headers: Vec::new(),
            body: Body::Text(reason.clone()),
            reason,
        }
    }

    /// A 302 back to the client carrying `error=...` (RFC 6749 §4.1.2.1).
    pub fn redirect(location: String, reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FOUND,
            headers: vec![(LOCATION, location)],
            body: Body::Text(String::new()),
            reason: reason.into(),
        }
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Body::Json(value) => (self.status, axum::Json(value)).into_response(),
            Body::Text(text) => (self.status, text).into_response(),
        };
        let headers = response.headers_mut();
        // RFC 6749 §5.1/§5.2: no answer of the token endpoint may be cached; harmless elsewhere.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in self.headers {
            let value = value.parse().expect("fake header values are plain ASCII");
            headers.insert(name, value);
        }
        response.extensions_mut().insert(RejectReason(self.reason));
        response
    }
}

/// Request parameters after the RFC 6749 §3.1/§3.2 rules: no parameter twice, and an empty value
/// counts as absent.
pub(super) struct Params(BTreeMap<String, String>);

impl Params {
    /// Builds from decoded pairs; the error is the reason a repeated name was refused.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            if map.contains_key(&name) {
                return Err(format!("parameter `{name}` sent twice"));
            }
            map.insert(name, value);
        }
        map.retain(|_, value| !value.is_empty());
        Ok(Self(map))
    }

    /// A URL's query string.
    pub fn from_query(query: &str) -> Result<Self, String> {
        Self::from_pairs(url::form_urlencoded::parse(query.as_bytes()).into_owned())
    }

    /// An `application/x-www-form-urlencoded` body.
    pub fn from_form(body: &[u8]) -> Result<Self, Reject> {
        let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).map_err(|e| {
            Reject::invalid_request(format!("body is not valid form encoding: {e}"))
        })?;
        Self::from_pairs(pairs).map_err(Reject::invalid_request)
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

/// Rejects a body that is not form-encoded (parameters like charset are allowed).
pub(super) fn require_form(headers: &HeaderMap) -> Result<(), Reject> {
    let expected = "application/x-www-form-urlencoded";
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
pub(super) fn bearer(headers: &HeaderMap) -> Result<&str, Reject> {
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

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1), decoded.
pub(super) fn basic(headers: &HeaderMap) -> Result<(String, String), Reject> {
    let value = authorization(headers).ok_or_else(|| {
        Reject::invalid_client("no Authorization: Basic header with the client credentials")
    })?;
    let malformed = || {
        Reject::invalid_client(format!(
            "Authorization `{value}` is not Basic base64(urlencode(id):urlencode(secret))"
        ))
    };
    let (scheme, encoded) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    let id = form_decode(id).ok_or_else(malformed)?;
    let secret = form_decode(secret).ok_or_else(malformed)?;
    Ok((id, secret))
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a space, `%XX` a byte.
fn form_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = value.get(i + 1..i + 3)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Best-effort `grant_type` of a token request body, whatever its Content-Type, for counting.
pub(super) fn grant_type_of(body: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "grant_type")
        .map(|(_, value)| value.into_owned())
}

/// Random bytes, hex-encoded: the shape of every code, token and key id.
pub(super) fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}
