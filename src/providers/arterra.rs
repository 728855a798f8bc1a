//! ARterra Labs (document 004 "OAuth2").

use super::{BodyEncoding, ClientAuth, Environment, Profile, QuerySpace};

pub(super) fn profile(environment: Environment) -> Profile {
    // 004: "Sandbox ... https://staging.arterra.co/oauth2-login. For live env - https://app.arterra.co/oauth2-login."
    let base = match environment {
        Environment::Sandbox => "https://staging.arterra.co",
        Environment::Live => "https://app.arterra.co",
    };
    Profile {
        authorize_url: format!("{base}/oauth2-login"),
        // 004: "curl -X 'POST' 'https://staging.arterra.co/api/auth/oauth2-token'"
        token_url: format!("{base}/api/auth/oauth2-token"),
        // 004: "to receive auth information and private user data call .../api/auth/info"
        userinfo_url: Some(format!("{base}/api/auth/info")),
        usage_url: None,
        // Silent in the document: no revocation endpoint.
        revocation_url: None,
        // 004: "It is important to pass Authorization: Basic Base64({CLIENT_ID}:{CLIENT_SECRET})"
        client_auth: ClientAuth::Basic,
        // 004: "-H 'Content-Type: application/json'"
        body_encoding: BodyEncoding::Json,
        scope_separator: " ".into(),
        // 004: "ARterra Labs API has no scope related restrictions".
        default_scopes: Vec::new(),
        // 004's code exchange body is only {grant_type, code}.
        code_redirect_uri: false,
        // 004's refresh body is only {grant_type, refresh_token}.
        refresh_redirect_uri: false,
        // 004 gives no lifetime; an hour is the common default.
        default_token_lifetime_secs: 3600,
        extra_authorize_params: Vec::new(),
        // 004: "we added unofficial query param response_type=signup instead of response_type=code"
        sign_up_response_type: Some("signup".into()),
        // 004: "When you receive userId query param that means that new ARterra Labs user was
        // created but he needs to check his mailbox and finish email verification."
        pending_verification_param: Some("userId".into()),
        // 004: "password - This grant requires the 3rd party app first to acquire the user's credentials"
        password_grant: true,
        user_id_field: "id".into(),
        pkce: false,
        query_space: QuerySpace::Plus,
        usage_whole_credits: false,
    }
}
