//! ARterra Labs (doc 004: OAuth2 connect flow).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::profile::{
    AuthorizeRules, BadLink, ClientAuth, Encoding, Profile, RefreshRedirect, TokenShape,
};
use super::registry::User;
use super::wire::Reject;
use super::{Inner, authorize, resource, token};

pub(super) const PROFILE: Profile = Profile {
    name: "ARterra",
    // Doc 004 line 57.
    authorize_path: "/oauth2-login",
    // Doc 004 lines 99, 184.
    token_path: "/api/auth/oauth2-token",
    // Doc 004 line 116.
    userinfo_path: Some("/api/auth/info"),
    usage_path: None,
    authorize: AuthorizeRules {
        // Doc 004 line 67 (code) and line 121 (the unofficial signup).
        response_types: &["code", "signup"],
        // Doc 004 line 26: no scopes at all.
        scope_required: false,
        // Doc 004 line 62: "If OAuth2 link is configured incorrectly user will be redirected to main
        // ARterra Labs page."
        bad_link: BadLink::RedirectHome,
        // Doc 004 lines 131, 136-139: either page lets a new user sign up.
        sign_up: true,
    },
    // Doc 004 line 86: "valid for one time use during 3 minute".
    code_lifetime: Duration::from_secs(180),
    // Silent in the document.
    expires_in: Some(3600),
    // Doc 004 lines 101, 186.
    token_encoding: Encoding::Json,
    // Doc 004 lines 96, 182: "It is important to pass Authorization: Basic ..."; the bodies on lines
    // 102-105 and 187-190 carry no client credentials.
    client_auth: ClientAuth::BasicOnly,
    // Doc 004 lines 102-105: the body is grant_type and code only (a matching redirect_uri is tolerated).
    code_needs_redirect_uri: false,
    // Doc 004 lines 187-190.
    refresh_redirect_uri: RefreshRedirect::NotUsed,
    // Silent in the document: rotate, the stricter reading (RFC 6749 §10.4 recommends rotation), so a
    // broker that keeps an old refresh token is caught.
    rotates_refresh_tokens: true,
    // Doc 004 lines 21-22.
    password_grant: true,
    // Doc 004 lines 117, 189: 128 hex characters.
    access_token_shape: TokenShape::Hex(64),
    refresh_token_bytes: 64,
};

pub(super) fn routes() -> Router<Arc<Inner>> {
    Router::new()
        .route(PROFILE.authorize_path, get(authorize::page))
        .route(PROFILE.token_path, post(token::endpoint))
        .route("/api/auth/info", get(info))
}

/// Doc 004 lines 114-117: "auth information and private user data".
async fn info(State(fake): State<Arc<Inner>>, headers: HeaderMap) -> Result<Response, Reject> {
    resource::userinfo(fake, headers, render_user).await
}

fn render_user(user: &User) -> Value {
    json!({ "id": user.id, "email": user.email, "emailVerified": user.email_verified })
}
