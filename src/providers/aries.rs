//! Aries (document 002 "Authorization Code flow").

use super::{BodyEncoding, ClientAuth, Profile, QuerySpace};

pub(super) fn profile() -> Profile {
    Profile {
        // 002: "Endpoint: https://app.aries.com/oauth2/authorize"
        authorize_url: "https://app.aries.com/oauth2/authorize".into(),
        // 002: "Endpoint: POST https://api.aries.com/v1/oauth2/token" (code and refresh)
        token_url: "https://api.aries.com/v1/oauth2/token".into(),
        // 002 documents no user endpoint and no usage endpoint.
        userinfo_url: None,
        usage_url: None,
        // Silent in the document: no revocation endpoint.
        revocation_url: None,
        // 002's refresh table: client_id and client_secret are body fields.
        client_auth: ClientAuth::Body,
        // 002 is silent on the encoding: RFC 6749 §4.1.3 says form. Configurable.
        body_encoding: BodyEncoding::Form,
        scope_separator: " ".into(),
        default_scopes: Vec::new(),
        code_redirect_uri: true,
        // 002's refresh table: "redirect_uri Yes Must match the redirect URI used in the original flow".
        refresh_redirect_uri: true,
        // 002: "Access tokens expire after expires_in seconds (typically 1 hour)".
        default_token_lifetime_secs: 3600,
        extra_authorize_params: Vec::new(),
        sign_up_response_type: None,
        pending_verification_param: None,
        password_grant: false,
        user_id_field: "id".into(),
        pkce: false,
        query_space: QuerySpace::Plus,
        usage_whole_credits: false,
    }
}
