//! Bearer-protected endpoints shared by the providers that have them (RFC 6750 §2.1).

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::registry::User;
use super::wire::{self, Reject};
use super::{Inner, fault};

/// The user a request's bearer token belongs to.
pub(super) fn bearer_user(fake: &Inner, headers: &HeaderMap) -> Result<String, Reject> {
    let token = wire::bearer(headers)?;
    fake.lock()
        .registry
        .bearer_user(token)
        .map_err(Reject::invalid_token)
}

/// A user endpoint: the userinfo fault, then the token check, then the provider's view of the user.
pub(super) async fn userinfo(
    fake: Arc<Inner>,
    headers: HeaderMap,
    render: fn(&User) -> Value,
) -> Result<Response, Reject> {
    // A malformed request is still rejected while the provider is faulty, so the wire format is checked.
    wire::bearer(&headers)?;
    let fault = fake.lock().userinfo_fault.clone();
    if let Some(response) = fault::respond(&fault).await {
        return Ok(response);
    }
    let user_id = bearer_user(&fake, &headers)?;
    let state = fake.lock();
    let user = state
        .registry
        .user(&user_id)
        .expect("tokens are only issued to existing users");
    Ok(axum::Json(render(user)).into_response())
}
