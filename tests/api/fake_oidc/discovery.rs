//! The two documents a relying party fetches before anything else: the provider metadata (OIDC
//! Discovery §3, RFC 8414, RFC 9207 §3) and the JWKS. Both are counted, so tests can prove caching.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{AUTHORIZE_PATH, Inner, JWKS_PATH, REVOCATION_PATH, SCOPES, TOKEN_PATH, USERINFO_PATH};

pub(super) async fn document(State(fake): State<Arc<Inner>>) -> Response {
    let claimed = {
        let mut state = fake.lock();
        state.discovery_fetches += 1;
        state.discovery_issuer.clone()
    };
    // A mix-up only lies about `issuer`; every endpoint stays this provider's.
    let body = json!({
        "issuer": claimed.unwrap_or_else(|| fake.issuer.clone()),
        "authorization_endpoint": fake.url(AUTHORIZE_PATH),
        "token_endpoint": fake.url(TOKEN_PATH),
        "userinfo_endpoint": fake.url(USERINFO_PATH),
        "jwks_uri": fake.url(JWKS_PATH),
        "revocation_endpoint": fake.url(REVOCATION_PATH),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": SCOPES,
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "authorization_response_iss_parameter_supported": true,
    });
    axum::Json(body).into_response()
}

pub(super) async fn jwks(State(fake): State<Arc<Inner>>) -> Response {
    let body = {
        let mut state = fake.lock();
        state.jwks_fetches += 1;
        state.keys.jwks()
    };
    axum::Json(body).into_response()
}
