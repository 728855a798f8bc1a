//! ARES (documents 000 "Manual Integration" and 001 "Track Usage").

use super::{BodyEncoding, ClientAuth, Profile, QuerySpace};

pub(super) fn profile() -> Profile {
    Profile {
        // 000: "https://joinares.com/oauth?client_id=..&redirect_uri=..&response_type=code&scope=read+write"
        authorize_url: "https://joinares.com/oauth".into(),
        // 000: "Token Endpoint: https://oauth.joinares.com/oauth/token"
        token_url: "https://oauth.joinares.com/oauth/token".into(),
        // 000: "User Endpoint: https://oauth.joinares.com/v1/user"; 001: it includes credits left.
        userinfo_url: Some("https://oauth.joinares.com/v1/user".into()),
        // 001: `const UsageUrl = "https://oauth.joinares.com/v1/partner/usage"`
        usage_url: Some("https://oauth.joinares.com/v1/partner/usage".into()),
        // Silent in the document: no revocation endpoint.
        revocation_url: None,
        // 000: client_id and client_secret are fields of the request body ...
        client_auth: ClientAuth::Body,
        // ... which is "Content-Type: application/x-www-form-urlencoded".
        body_encoding: BodyEncoding::Form,
        // 000: "scope=read+write": a space, form-encoded.
        scope_separator: " ".into(),
        default_scopes: vec!["read".into(), "write".into()],
        code_redirect_uri: true,
        // 000 "Refresh the access token": the example body lists redirect_uri.
        refresh_redirect_uri: true,
        // 000: "When an access token expires (1 hour after issuance in our case)".
        default_token_lifetime_secs: 3600,
        extra_authorize_params: Vec::new(),
        sign_up_response_type: None,
        pending_verification_param: None,
        password_grant: false,
        user_id_field: "id".into(),
        pkce: false,
        // 000: "scope=read+write".
        query_space: QuerySpace::Plus,
        // 001: every example reports whole credits ("credits: 1").
        usage_whole_credits: true,
    }
}
