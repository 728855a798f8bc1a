//! The UserInfo endpoint (OIDC Core §5.3): a working bearer access token gets the user's claims; any
//! other gets 401 with an RFC 6750 §3.1 challenge.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Inner;
use super::wire::{self, Reject};

pub(super) async fn endpoint(
    State(fake): State<Arc<Inner>>,
    headers: HeaderMap,
) -> Result<Response, Reject> {
    let token = wire::bearer(&headers)?;
    if !fake.lock().grants.access_works(token) {
        return Err(Reject::invalid_token(
            "access token unknown, revoked, or of a replayed code",
        ));
    }
    // §5.3.2: `sub` is always the id_token's true subject, whatever the id_tokens are forged to say.
    let body = json!({ "sub": fake.subject, "email": fake.email() });
    Ok(axum::Json(body).into_response())
}
