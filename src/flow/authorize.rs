//! Building the authorization URL (RFC 6749 §4.1.1) with a provider's quirks.

use url::Url;

use crate::providers::{Profile, QuerySpace};

/// What goes into one authorization URL.
pub(crate) struct AuthorizeParams<'a> {
    /// The provider's OAuth client id.
    pub(crate) client_id: &'a str,
    /// One of the registered redirect URIs.
    pub(crate) redirect_uri: &'a str,
    /// Scopes to request (already defaulted).
    pub(crate) scopes: &'a [String],
    /// The state value.
    pub(crate) state: &'a str,
    /// Whether to open the provider's sign-up page.
    pub(crate) sign_up: bool,
    /// S256 PKCE challenge, when the profile uses PKCE.
    pub(crate) code_challenge: Option<&'a str>,
    /// The OpenID `nonce`, for an oidc provider.
    pub(crate) nonce: Option<&'a str>,
}

/// The URL to send the end user to. Fails only on an unparseable configured
/// authorize URL or a sign-up request to a provider without sign-up links.
pub(crate) fn authorization_url(
    profile: &Profile,
    p: &AuthorizeParams<'_>,
) -> Result<String, &'static str> {
    let mut url = Url::parse(&profile.authorize_url).map_err(|_| "authorize_url is not a URL")?;
    let response_type = if p.sign_up {
        profile
            .sign_up_response_type
            .as_deref()
            .ok_or("this provider has no sign-up links")?
    } else {
        "code"
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", p.client_id);
        q.append_pair("redirect_uri", p.redirect_uri);
        q.append_pair("response_type", response_type);
        if !p.scopes.is_empty() {
            q.append_pair("scope", &p.scopes.join(&profile.scope_separator));
        }
        q.append_pair("state", p.state);
        if let Some(challenge) = p.code_challenge {
            q.append_pair("code_challenge", challenge);
            q.append_pair("code_challenge_method", "S256");
        }
        if let Some(nonce) = p.nonce {
            q.append_pair("nonce", nonce);
        }
        for (k, v) in &profile.extra_authorize_params {
            q.append_pair(k, v);
        }
    }
    if profile.query_space == QuerySpace::Percent {
        // The serializer writes spaces as '+' and a literal '+' as "%2B", so
        // every '+' left in the query is a space.
        let query = url.query().map(|q| q.replace('+', "%20"));
        url.set_query(query.as_deref());
    }
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{Environment, ProviderKind};

    fn params<'a>(scopes: &'a [String], sign_up: bool) -> AuthorizeParams<'a> {
        AuthorizeParams {
            client_id: "cid",
            redirect_uri: "https://app.example.com/cb",
            scopes,
            state: "st",
            sign_up,
            code_challenge: None,
            nonce: None,
        }
    }

    #[test]
    fn ares_url_matches_document() {
        let profile = Profile::builtin(ProviderKind::Ares, Environment::Sandbox).expect("builtin");
        let scopes = profile.default_scopes.clone();
        let url = authorization_url(&profile, &params(&scopes, false)).expect("url");
        assert_eq!(
            url,
            "https://joinares.com/oauth?client_id=cid&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb\
             &response_type=code&scope=read+write&state=st"
        );
    }

    #[test]
    fn askara_url_encodes_spaces_as_its_document_does() {
        let profile =
            Profile::builtin(ProviderKind::Askara, Environment::Sandbox).expect("builtin");
        let scopes = profile.default_scopes.clone();
        let url = authorization_url(&profile, &params(&scopes, false)).expect("url");
        assert!(url.contains("&scope=profile%20organization&"), "{url}");
    }

    #[test]
    fn arterra_sign_up_uses_signup_response_type_and_no_scope() {
        let profile = Profile::builtin(ProviderKind::Arterra, Environment::Live).expect("builtin");
        let url = authorization_url(&profile, &params(&[], true)).expect("url");
        assert!(url.starts_with("https://app.arterra.co/oauth2-login?"));
        assert!(url.contains("response_type=signup"));
        assert!(!url.contains("scope="));
    }

    #[test]
    fn sign_up_elsewhere_is_refused() {
        let profile =
            Profile::builtin(ProviderKind::Askara, Environment::Sandbox).expect("builtin");
        assert!(authorization_url(&profile, &params(&[], true)).is_err());
    }

    #[test]
    fn pkce_and_extra_params_are_appended() {
        let mut profile = Profile::rfc6749(
            "https://idp.example/auth?tenant=x".into(),
            "https://idp.example/token".into(),
        );
        profile.extra_authorize_params = vec![("prompt".into(), "consent".into())];
        let mut p = params(&[], false);
        p.code_challenge = Some("chal");
        let url = authorization_url(&profile, &p).expect("url");
        assert!(url.starts_with("https://idp.example/auth?tenant=x&client_id=cid"));
        assert!(url.contains("code_challenge=chal&code_challenge_method=S256&prompt=consent"));
    }
}
