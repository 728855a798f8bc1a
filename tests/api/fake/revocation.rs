//! RFC 7009 token revocation, offered by every fake at `/oauth/revoke` (the
//! seed documents describe none; tests point a provider's `revocation_url`
//! at it). Strict: a form-encoded POST (§2.1), the client authenticated as at
//! this provider's token endpoint, `token` required, `token_type_hint` one of
//! the two RFC values if present. A revoked token stops working here.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use super::{Inner, fault, token::client_credentials, wire, wire::Params, wire::Reject};

pub(super) const PATH: &str = "/oauth/revoke";

pub(super) async fn endpoint(
    State(fake): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    wire::require_content_type(&headers, "application/x-www-form-urlencoded").map_err(|_| {
        Reject::invalid_request("RFC 7009 §2.1: the body is application/x-www-form-urlencoded")
    })?;
    let params = Params::from_form(&body)?;
    let profile = fake.kind.profile();
    let (client_id, client_secret) = client_credentials(profile, &headers, &params)?;
    if client_id != fake.client_id || client_secret != fake.client_secret {
        return Err(Reject::invalid_client("wrong client credentials"));
    }
    let token = params
        .get("token")
        .ok_or_else(|| Reject::invalid_request("RFC 7009 §2.1: `token` is required"))?
        .to_owned();
    let hint = params.get("token_type_hint");
    if hint.is_some_and(|h| h != "access_token" && h != "refresh_token") {
        return Err(Reject::invalid_request(
            "token_type_hint is access_token or refresh_token",
        ));
    }
    let fault = fake.lock().revocation_fault.clone();
    if let Some(response) = fault::respond(&fault).await {
        return Ok(response);
    }
    // §2.2: 200 whether or not the token was known.
    let mut state = fake.lock();
    state.registry.revoke_refresh_token(&token);
    state.registry.revoke_access_token(&token);
    Ok(StatusCode::OK.into_response())
}
