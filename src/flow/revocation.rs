//! Token revocation at the provider (RFC 7009): a form-encoded POST of the
//! token and its type hint, with the client authenticated as at the token
//! endpoint. The refresh token goes first: revoking it usually revokes the
//! access tokens issued from it too (§2.1).

use super::{OutboundRequest, token_request::basic_authorization};
use crate::{
    domain::ClientSecret,
    providers::{ClientAuth, Profile},
    secret::Secret,
};

/// Which token a revocation request carries (`token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hint {
    Refresh,
    Access,
}

impl Hint {
    fn as_str(self) -> &'static str {
        match self {
            Hint::Refresh => "refresh_token",
            Hint::Access => "access_token",
        }
    }
}

/// The revocation request for `token` to `url`.
pub(crate) fn revocation_request(
    profile: &Profile,
    url: &str,
    client_id: &str,
    client_secret: &ClientSecret,
    token: &str,
    hint: Hint,
) -> OutboundRequest {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("token", token);
    form.append_pair("token_type_hint", hint.as_str());
    let mut headers = vec![
        (
            "content-type",
            Secret::new("application/x-www-form-urlencoded"),
        ),
        ("accept", Secret::new("application/json")),
    ];
    match profile.client_auth {
        ClientAuth::Body => {
            form.append_pair("client_id", client_id);
            form.append_pair("client_secret", client_secret.secret());
        }
        ClientAuth::Basic => headers.push(basic_authorization(client_id, client_secret)),
    }
    OutboundRequest {
        method: "POST",
        url: url.to_owned(),
        headers,
        body: Some(Secret::new(form.finish())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_is_a_form_post_with_the_hint_and_the_client() {
        let mut profile = Profile::rfc6749("https://p/a".into(), "https://p/t".into());
        let secret = ClientSecret::new("s3cret");
        let basic = revocation_request(
            &profile,
            "https://p/revoke",
            "cid",
            &secret,
            "tok",
            Hint::Refresh,
        );
        assert_eq!(basic.method, "POST");
        let body = basic.body.as_ref().expect("body").expose().to_owned();
        assert_eq!(body, "token=tok&token_type_hint=refresh_token");
        assert!(
            basic
                .headers
                .iter()
                .any(|(n, v)| *n == "authorization" && v.expose().starts_with("Basic "))
        );
        profile.client_auth = ClientAuth::Body;
        let in_body = revocation_request(
            &profile,
            "https://p/revoke",
            "cid",
            &secret,
            "tok",
            Hint::Access,
        );
        assert_eq!(
            in_body.body.as_ref().expect("body").expose(),
            "token=tok&token_type_hint=access_token&client_id=cid&client_secret=s3cret"
        );
        assert!(!in_body.headers.iter().any(|(n, _)| *n == "authorization"));
        assert!(!format!("{in_body:?}").contains("s3cret"));
    }
}
