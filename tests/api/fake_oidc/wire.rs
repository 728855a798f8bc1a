//! Wire-level helpers every endpoint shares: strict parameter parsing, the Content-Type and
//! Authorization headers, and random values; rejections are the strict fakes' own `Reject`.

use std::collections::BTreeMap;

use crate::fake::wire::require_content_type;
pub(super) use crate::fake::wire::{Reject, RejectReason, bearer};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

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
    require_content_type(headers, "application/x-www-form-urlencoded")
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
