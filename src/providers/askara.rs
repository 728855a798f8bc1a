//! Askara (document 003 "OAuth2 guide").

use super::{BodyEncoding, ClientAuth, Profile, QuerySpace};

pub(super) fn profile() -> Profile {
    Profile {
        // 003 Step 1: "https://app.askara.loc/authorize?response_type=code&..." — the
        // document's own host; override `authorize_url` if your tenant differs.
        authorize_url: "https://app.askara.loc/authorize".into(),
        // 003 Step 3: "POST https://api.askara.ai/oauth2/token"
        token_url: "https://api.askara.ai/oauth2/token".into(),
        userinfo_url: None,
        usage_url: None,
        // Silent in the document: no revocation endpoint.
        revocation_url: None,
        // 003 Step 3: client_id and client_secret are JSON body fields ...
        client_auth: ClientAuth::Body,
        // ... with "Content-Type: application/json".
        body_encoding: BodyEncoding::Json,
        // 003 Step 1: "scope=profile%20organization"
        scope_separator: " ".into(),
        default_scopes: vec!["profile".into(), "organization".into()],
        code_redirect_uri: true,
        // 003 Step 4: the refresh body has no redirect_uri.
        refresh_redirect_uri: false,
        // 003: "expires_in": 86400 in both answers.
        default_token_lifetime_secs: 86400,
        extra_authorize_params: Vec::new(),
        sign_up_response_type: None,
        pending_verification_param: None,
        password_grant: false,
        user_id_field: "id".into(),
        pkce: false,
        // 003 Step 1: "scope=profile%20organization".
        query_space: QuerySpace::Percent,
        usage_whole_credits: false,
    }
}
