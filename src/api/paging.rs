//! ListConnections' page tokens: opaque to callers, they carry where the last
//! page ended in the list's order (created_at, id) and a fingerprint of the
//! filters, so a token is refused with other filters rather than silently
//! paging a different list.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    broker::{ListFilter, PageAfter},
    domain::Connection,
    error::{Error, Result},
};

/// Connections in a page when the request names no size.
pub(super) const DEFAULT_PAGE_SIZE: u64 = 100;
/// The most connections in one page.
pub(super) const MAX_PAGE_SIZE: u64 = 1_000;

#[derive(Serialize, Deserialize)]
struct Token {
    /// created_at of the last listed connection.
    c: i64,
    /// Its id.
    i: String,
    /// The filters' fingerprint.
    f: String,
}

/// A short digest of the filters a token is valid for.
pub(super) fn fingerprint(filter: &ListFilter<'_>) -> String {
    let mut hash = Sha256::new();
    for part in [
        filter.subject.map(|s| s.as_str().to_owned()),
        filter.provider.map(|p| p.as_str().to_owned()),
        filter.status.map(|s| s.as_str().to_owned()),
        filter.labels.map(|l| l.to_stored()),
    ] {
        hash.update(part.unwrap_or_default().as_bytes());
        hash.update([0]);
    }
    URL_SAFE_NO_PAD.encode(&hash.finalize()[..9])
}

/// The token for the page after `last`.
pub(super) fn encode(last: &Connection, fingerprint: &str) -> String {
    let token = Token {
        c: last.created_at,
        i: last.id.to_string(),
        f: fingerprint.to_owned(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

/// Where the page of `token` starts; `None` for the first page.
pub(super) fn decode(token: &str, fingerprint: &str) -> Result<Option<PageAfter>> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        Error::invalid(
            "page_token",
            "not a page token of ListConnections (pass next_page_token as it came)",
        )
    };
    if token.len() > 512 {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let token: Token = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if token.f != fingerprint {
        return Err(Error::invalid(
            "page_token",
            "made for other filters: repeat the first request's filters, or start again without a token",
        ));
    }
    // As stored: the canonical spelling compares as the rows' ids do.
    let id = crate::domain::ConnectionId::parse(&token.i).map_err(|_| invalid())?;
    Ok(Some(PageAfter {
        created_at: token.c,
        id: id.to_string(),
    }))
}
