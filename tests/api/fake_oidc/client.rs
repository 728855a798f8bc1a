//! Client authentication at the token and revocation endpoints: `client_secret_basic` only, the one
//! method the discovery document offers (RFC 6749 §2.3.1). Credentials in the body would be a second,
//! unoffered method (§2.3: "MUST NOT use more than one"), so they are refused even beside a good header.

use axum::http::HeaderMap;

use super::Inner;
use super::wire::{self, Params, Reject};

/// Body parameters that carry client credentials by some other method.
const BODY_CREDENTIALS: [&str; 3] = ["client_id", "client_secret", "client_assertion"];

pub(super) fn authenticate(
    fake: &Inner,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(), Reject> {
    if let Some(name) = BODY_CREDENTIALS
        .iter()
        .find(|name| params.get(name).is_some())
    {
        return Err(Reject::invalid_request(format!(
            "`{name}` in the body: this provider authenticates clients only by client_secret_basic"
        )));
    }
    let (id, secret) = wire::basic(headers)?;
    if id != fake.client_id {
        return Err(Reject::invalid_client(format!("unknown client_id `{id}`")));
    }
    if secret != fake.client_secret {
        return Err(Reject::invalid_client("wrong client_secret"));
    }
    Ok(())
}
