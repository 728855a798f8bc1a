//! Aries (doc 002: server-side authorization code flow). The document is terse; where it is silent the
//! fake follows RFC 6749.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

use super::profile::{
    AuthorizeRules, BadLink, ClientAuth, Encoding, Profile, RefreshRedirect, TokenShape,
};
use super::{Inner, authorize, token};

pub(super) const PROFILE: Profile = Profile {
    name: "Aries",
    // Doc 002 line 8.
    authorize_path: "/oauth2/authorize",
    // Doc 002 lines 10-11.
    token_path: "/v1/oauth2/token",
    userinfo_path: None,
    usage_path: None,
    authorize: AuthorizeRules {
        response_types: &["code"],
        // The list of required parameters is cut off in the document; RFC 6749 §4.1.1 makes scope optional.
        scope_required: false,
        // Doc 002 line 4: the redirect URI "must exactly match" a pre-registered one.
        bad_link: BadLink::Rfc,
        sign_up: false,
    },
    // Doc 002 line 10 only says single-use; RFC 6749 §4.1.2 recommends at most 10 minutes.
    code_lifetime: Duration::from_secs(600),
    // Doc 002 line 11: "typically 1 hour".
    expires_in: Some(3600),
    // Silent in the document: RFC 6749 §4.1.3 form encoding.
    token_encoding: Encoding::Form,
    // Doc 002 lines 15-20: client_id and client_secret are request body fields.
    client_auth: ClientAuth::Body,
    // RFC 6749 §4.1.3: required because the authorization request had one.
    code_needs_redirect_uri: true,
    // Doc 002 lines 27-29: required, "Must match the redirect URI used in the original flow".
    refresh_redirect_uri: RefreshRedirect::SameAsOriginal,
    // Doc 002 line 11 promises only "a new access token"; RFC 6749 §6 makes a new refresh token optional.
    rotates_refresh_tokens: false,
    password_grant: false,
    access_token_shape: TokenShape::Hex(32),
    refresh_token_bytes: 32,
};

pub(super) fn routes() -> Router<Arc<Inner>> {
    Router::new()
        .route(PROFILE.authorize_path, get(authorize::page))
        .route(PROFILE.token_path, post(token::endpoint))
}
