//! The token endpoint (RFC 6749 §3.2, §4.1.3, §6; OIDC Core §3.1.3, §12): a form-encoded POST from an
//! authenticated client, redeeming a code (with its PKCE verifier) or rotating a refresh token, and
//! answering with tokens and an id_token that the current `Forgery` may bend.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{CACHE_CONTROL, PRAGMA};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::grants::Session;
use super::id_token::{self, Claims};
use super::wire::{self, Params, Reject};
use super::{Inner, client, unix_now};

/// `expires_in` of every access token.
const ACCESS_TOKEN_SECS: u64 = 3600;

pub(super) async fn endpoint(
    State(fake): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    // Counted before any check, so a test sees the requests that were refused too.
    if let Some(grant_type) = wire::grant_type_of(&body) {
        *fake.lock().token_requests.entry(grant_type).or_default() += 1;
    }
    wire::require_form(&headers)?;
    let params = Params::from_form(&body)?;
    client::authenticate(&fake, &headers, &params)?;
    let body = match params.required("grant_type", "every token request")? {
        "authorization_code" => {
            let code = params.required("code", "authorization_code grant")?;
            // §4.1.3: required because the authorization request had one.
            let redirect_uri =
                params.required("redirect_uri", "the authorization request had one")?;
            let verifier = params.required(
                "code_verifier",
                "the authorization request had a PKCE challenge",
            )?;
            let mut state = fake.lock();
            let session = state.grants.redeem_code(code, redirect_uri, verifier)?;
            let scope = session.scope.clone();
            answer(&fake, &mut state, &session, &scope)
        }
        "refresh_token" => {
            let refresh_token = params.required("refresh_token", "refresh_token grant")?;
            let scope = params.get("scope");
            let mut state = fake.lock();
            let session = state.grants.refresh(refresh_token, scope)?;
            let scope = scope.unwrap_or(session.scope.as_str()).to_owned();
            answer(&fake, &mut state, &session, &scope)
        }
        other => {
            return Err(Reject::unsupported_grant_type(format!(
                "grant_type `{other}`: only authorization_code and refresh_token are offered"
            )));
        }
    };
    // §5.1: tokens are never cached.
    let headers = [(CACHE_CONTROL, "no-store"), (PRAGMA, "no-cache")];
    Ok((headers, axum::Json(body)).into_response())
}

/// Issues a token pair in `session`'s family and builds the §5.1 body with its id_token.
fn answer(fake: &Inner, state: &mut super::State, session: &Session, scope: &str) -> Value {
    let (access_token, refresh_token) = state.grants.issue_tokens(session);
    let claims = Claims {
        issuer: &fake.issuer,
        subject: &fake.subject,
        audience: &fake.client_id,
        nonce: session.nonce.as_deref(),
        auth_time: session.auth_time,
        now: unix_now(),
    };
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_SECS,
        "refresh_token": refresh_token,
        "scope": scope,
    });
    if let Some(id_token) = id_token::issue(&state.keys, &state.forgery, &claims) {
        body["id_token"] = json!(id_token);
    }
    body
}
