//! Token revocation (RFC 7009): a form-encoded POST (§2.1), the client authenticated as at the token
//! endpoint, `token` required, `token_type_hint` one of the two RFC values if present. 200 whether or not
//! the token was known (§2.2); a revoked token stops working here.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::wire::{self, Params, Reject};
use super::{Inner, client};

pub(super) async fn endpoint(
    State(fake): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    wire::require_form(&headers)?;
    let params = Params::from_form(&body)?;
    client::authenticate(&fake, &headers, &params)?;
    let token = params.required("token", "RFC 7009 §2.1")?;
    let hint = params.get("token_type_hint");
    if let Some(hint) = hint
        && hint != "access_token"
        && hint != "refresh_token"
    {
        // §2.1 has a provider ignore an unknown hint; refusing it proves authbroker sends only
        // the two values the RFC defines.
        return Err(Reject::invalid_request(format!(
            "token_type_hint `{hint}` is neither access_token nor refresh_token"
        )));
    }
    let mut state = fake.lock();
    state.grants.revoke(token);
    state.revocations.push(hint.unwrap_or_default().to_owned());
    Ok(StatusCode::OK.into_response())
}
