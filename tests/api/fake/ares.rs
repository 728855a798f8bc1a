//! ARES (doc 000: OAuth manual integration; doc 001: partner API for credits).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::profile::{
    AuthorizeRules, BadLink, ClientAuth, Encoding, Profile, RefreshRedirect, TokenShape,
};
use super::registry::User;
use super::wire::{self, Reject};
use super::{Charge, Inner, authorize, chaos, fault, resource, token};

pub(super) const PROFILE: Profile = Profile {
    name: "ARES",
    // Doc 000 line 60: the authorize URL is https://joinares.com/oauth?...
    authorize_path: "/oauth",
    // Doc 000 lines 52, 54.
    token_path: "/oauth/token",
    userinfo_path: Some("/v1/user"),
    // Doc 001 line 80.
    usage_path: Some("/v1/partner/usage"),
    authorize: AuthorizeRules {
        response_types: &["code"],
        // Doc 000 lines 60-64: the URL always carries scope=read+write.
        scope_required: true,
        bad_link: BadLink::Rfc,
        sign_up: false,
    },
    // Silent in the document: RFC 6749 §4.1.2 recommends at most 10 minutes.
    code_lifetime: Duration::from_secs(600),
    // Doc 000 lines 96, 149: expires_in 3599, "1 hour after issuance".
    expires_in: Some(3599),
    // Doc 000 lines 76, 105-114: form-encoded body (URLSearchParams).
    token_encoding: Encoding::Form,
    // Doc 000 lines 81-82, 166-167: client_id and client_secret in the body.
    client_auth: ClientAuth::Body,
    // Doc 000 line 80.
    code_needs_redirect_uri: true,
    // Doc 000 line 170 lists redirect_uri in the refresh request; it does not say it must match.
    refresh_redirect_uri: RefreshRedirect::Registered,
    // Doc 000 line 173: "a new access token and refresh token pair. Always use the most recent".
    rotates_refresh_tokens: true,
    password_grant: false,
    // Doc 000 lines 118, 121: 40 hex characters.
    access_token_shape: TokenShape::Hex(20),
    refresh_token_bytes: 20,
};

pub(super) fn routes() -> Router<Arc<Inner>> {
    Router::new()
        .route(PROFILE.authorize_path, get(authorize::page))
        .route(PROFILE.token_path, post(token::endpoint))
        .route("/v1/user", get(user))
        .route("/v1/partner/usage", post(usage))
}

/// Doc 001 lines 34-39, 120: the user's information "including the number of credits the user has left".
async fn user(State(fake): State<Arc<Inner>>, headers: HeaderMap) -> Result<Response, Reject> {
    resource::userinfo(fake, headers, render_user).await
}

fn render_user(user: &User) -> Value {
    let name = user.email.split('@').next().unwrap_or_default();
    json!({ "id": user.id, "email": user.email, "name": name, "credits": user.credits })
}

/// Doc 001 lines 80-92: POST with the bearer token and a JSON body {client_id, usage, credits}; the
/// credits move from the user to the partner.
async fn usage(
    State(fake): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    // As at the user endpoint: the wire format is checked even while the provider is faulty.
    wire::bearer(&headers)?;
    let fault = fake.lock().usage_fault.clone();
    if let Some(response) = fault::respond(&fault).await {
        return Ok(response);
    }
    let turn = chaos::draw(&fake);
    if let Some(response) = turn.before_work().await {
        return Ok(response);
    }
    let user_id = resource::bearer_user(&fake, &headers)?;
    // Doc 001 line 85.
    wire::require_content_type(&headers, "application/json").map_err(|_| {
        Reject::message(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
            "usage body is not JSON-typed",
        )
    })?;
    let body: Value = serde_json::from_slice(&body).map_err(|e| {
        Reject::message(
            StatusCode::BAD_REQUEST,
            "Invalid JSON",
            format!("usage body is not JSON: {e}"),
        )
    })?;
    let (usage, credits) = usage_fields(&fake, &body)?;
    let remaining = charge(&fake, &user_id, &usage, credits)?;
    turn.after_work().await;
    Ok(axum::Json(json!({
        "success": true,
        "message": "Usage recorded",
        "usage": usage,
        "credits": credits,
        "remaining_credits": remaining,
    }))
    .into_response())
}

/// Moves `credits` from the user to the partner and notes it in the ledger; the user's credits left.
fn charge(fake: &Inner, user_id: &str, usage: &str, credits: i64) -> Result<i64, Reject> {
    let mut state = fake.lock();
    let user = state
        .registry
        .user_mut(user_id)
        .expect("tokens are only issued to existing users");
    if user.credits < credits {
        let reason = format!(
            "user `{user_id}` has {} credits, usage wants {credits}",
            user.credits
        );
        return Err(Reject::message(
            StatusCode::BAD_REQUEST,
            "Insufficient credits",
            reason,
        ));
    }
    user.credits -= credits;
    let remaining = user.credits;
    state.charges.push(Charge {
        user_id: user_id.to_owned(),
        usage: usage.to_owned(),
        credits,
        at: Instant::now(),
    });
    Ok(remaining)
}

/// The body's usage label and credit amount, checked the way doc 001 lines 60-65 do and then some.
fn usage_fields(fake: &Inner, body: &Value) -> Result<(String, i64), Reject> {
    let missing = |reason: &str| {
        Reject::message(
            StatusCode::BAD_REQUEST,
            "Missing required fields",
            reason.to_owned(),
        )
    };
    // Doc 001 line 60: `!client_id || !usage || credits === undefined` (JavaScript falsiness).
    let falsy = |v: Option<&Value>| match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(_) => false,
    };
    if falsy(body.get("client_id")) || falsy(body.get("usage")) || body.get("credits").is_none() {
        return Err(missing("usage body lacks client_id, usage or credits"));
    }
    if body["client_id"].as_str() != Some(fake.client_id.as_str()) {
        let reason = format!(
            "usage client_id {} is not this partner's",
            body["client_id"]
        );
        return Err(Reject::message(
            StatusCode::FORBIDDEN,
            "Invalid client_id",
            reason,
        ));
    }
    // Doc 001 line 140: usage is a label such as "test-button".
    let usage = body["usage"].as_str().ok_or_else(|| {
        Reject::message(
            StatusCode::BAD_REQUEST,
            "Invalid usage",
            format!("usage {} is not a string", body["usage"]),
        )
    })?;
    // Doc 001 line 141: credits is a whole number of credits; a negative one would pay the user.
    let credits = body["credits"]
        .as_i64()
        .filter(|c| *c >= 0)
        .ok_or_else(|| {
            let reason = format!("credits {} is not a non-negative integer", body["credits"]);
            Reject::message(StatusCode::BAD_REQUEST, "Invalid credits", reason)
        })?;
    Ok((usage.to_owned(), credits))
}
