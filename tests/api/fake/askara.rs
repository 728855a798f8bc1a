//! Askara (doc 003: OAuth2 guide).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

use super::profile::{
    AuthorizeRules, BadLink, ClientAuth, Encoding, Profile, RefreshRedirect, TokenShape,
};
use super::{Inner, authorize, token};

pub(super) const PROFILE: Profile = Profile {
    name: "Askara",
    // Doc 003 line 7.
    authorize_path: "/authorize",
    // Doc 003 lines 20, 40.
    token_path: "/oauth2/token",
    userinfo_path: None,
    usage_path: None,
    authorize: AuthorizeRules {
        response_types: &["code"],
        // Doc 003 line 11: scope=profile%20organization; the authorization page lists "the required scopes".
        scope_required: true,
        bad_link: BadLink::Rfc,
        sign_up: false,
    },
    // Silent in the document: RFC 6749 §4.1.2 recommends at most 10 minutes.
    code_lifetime: Duration::from_secs(600),
    // Doc 003 lines 32, 51.
    expires_in: Some(86400),
    // Doc 003 lines 21, 41: Content-Type: application/json.
    token_encoding: Encoding::Json,
    // Doc 003 lines 26-27, 45-46: client_id and client_secret in the JSON body.
    client_auth: ClientAuth::Body,
    // Doc 003 line 25.
    code_needs_redirect_uri: true,
    // Doc 003 lines 42-47: the refresh body has no redirect_uri.
    refresh_redirect_uri: RefreshRedirect::NotUsed,
    // Doc 003 line 55: "the old one will not be valid anymore".
    rotates_refresh_tokens: true,
    password_grant: false,
    // Doc 003 line 36: the access token is a JWT (jwt.io can decode it).
    access_token_shape: TokenShape::Jwt,
    refresh_token_bytes: 32,
};

pub(super) fn routes() -> Router<Arc<Inner>> {
    Router::new()
        .route(PROFILE.authorize_path, get(authorize::page))
        .route(PROFILE.token_path, post(token::endpoint))
}
