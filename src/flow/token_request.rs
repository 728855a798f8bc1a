//! Token endpoint requests (RFC 6749 §4.1.3, §4.3.2, §6) in each provider's
//! dialect: where client credentials go and how the body is encoded.

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Map, Value};

use crate::{
    domain::{AuthorizationCode, ClientSecret, Password, PkceVerifier, RefreshToken},
    providers::{BodyEncoding, ClientAuth, Profile},
    secret::Secret,
};

/// The grant being exchanged.
pub(crate) enum Grant<'a> {
    /// An authorization code from the callback.
    AuthorizationCode {
        /// The code.
        code: &'a AuthorizationCode,
        /// The redirect URI the flow began with.
        redirect_uri: &'a str,
        /// PKCE verifier, when the flow used one.
        code_verifier: Option<&'a PkceVerifier>,
    },
    /// A stored refresh token.
    RefreshToken {
        /// The refresh token.
        refresh_token: &'a RefreshToken,
        /// The connection's redirect URI (sent where the profile requires it).
        redirect_uri: &'a str,
    },
    /// Resource owner password credentials (RFC 6749 §4.3).
    Password {
        /// The end user's login.
        username: &'a str,
        /// The end user's password.
        password: &'a Password,
    },
}

impl Grant<'_> {
    /// The `grant_type` value, also used as a label in logs.
    pub(crate) fn grant_type(&self) -> &'static str {
        match self {
            Grant::AuthorizationCode { .. } => "authorization_code",
            Grant::RefreshToken { .. } => "refresh_token",
            Grant::Password { .. } => "password",
        }
    }

    /// The grant's secret: scrubbed from any provider text about it.
    pub(crate) fn secret(&self) -> &str {
        match self {
            Grant::AuthorizationCode { code, .. } => code.secret(),
            Grant::RefreshToken { refresh_token, .. } => refresh_token.secret(),
            Grant::Password { password, .. } => password.secret(),
        }
    }
}

/// An HTTP request to perform. The body and headers may hold secrets, so
/// `Debug` shows only the method and URL.
pub(crate) struct OutboundRequest {
    /// `POST` or `GET`.
    pub method: &'static str,
    /// Absolute URL.
    pub url: String,
    /// Headers, values secret.
    pub headers: Vec<(&'static str, Secret)>,
    /// The body, if any.
    pub body: Option<Secret>,
}

impl std::fmt::Debug for OutboundRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.url)
    }
}

/// The `authorization: Basic` header with the client's credentials: raw
/// `base64(id:secret)`, as ARterra's document builds it
/// (`Buffer.from('client:secret')`) and as most servers decode it; RFC 6749
/// §2.3.1's form-encoding first would break secrets with '+', '/' or '='.
pub(crate) fn basic_authorization(
    client_id: &str,
    client_secret: &ClientSecret,
) -> (&'static str, Secret) {
    let credentials = STANDARD.encode(format!("{client_id}:{}", client_secret.secret()));
    ("authorization", Secret::new(format!("Basic {credentials}")))
}

/// Builds the token request for `grant` as the profile's document prescribes.
pub(crate) fn token_request(
    profile: &Profile,
    client_id: &str,
    client_secret: &ClientSecret,
    grant: &Grant<'_>,
) -> OutboundRequest {
    let mut fields: Vec<(&'static str, String)> =
        vec![("grant_type", grant.grant_type().to_owned())];
    match grant {
        Grant::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            fields.push(("code", code.secret().to_owned()));
            if profile.code_redirect_uri {
                fields.push(("redirect_uri", (*redirect_uri).to_owned()));
            }
            if let Some(verifier) = code_verifier {
                fields.push(("code_verifier", verifier.secret().to_owned()));
            }
        }
        Grant::RefreshToken {
            refresh_token,
            redirect_uri,
        } => {
            fields.push(("refresh_token", refresh_token.secret().to_owned()));
            if profile.refresh_redirect_uri {
                fields.push(("redirect_uri", (*redirect_uri).to_owned()));
            }
        }
        Grant::Password { username, password } => {
            fields.push(("username", (*username).to_owned()));
            fields.push(("password", password.secret().to_owned()));
        }
    }

    let mut headers = vec![("accept", Secret::new("application/json"))];
    match profile.client_auth {
        ClientAuth::Body => {
            fields.push(("client_id", client_id.to_owned()));
            fields.push(("client_secret", client_secret.secret().to_owned()));
        }
        ClientAuth::Basic => headers.push(basic_authorization(client_id, client_secret)),
    }

    let body = match profile.body_encoding {
        BodyEncoding::Form => {
            headers.push((
                "content-type",
                Secret::new("application/x-www-form-urlencoded"),
            ));
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &fields {
                form.append_pair(k, v);
            }
            form.finish()
        }
        BodyEncoding::Json => {
            headers.push(("content-type", Secret::new("application/json")));
            let map: Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v)))
                .collect();
            Value::Object(map).to_string()
        }
    };
    OutboundRequest {
        method: "POST",
        url: profile.token_url.clone(),
        headers,
        body: Some(Secret::new(body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{Environment, ProviderKind};

    fn header<'a>(r: &'a OutboundRequest, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.expose())
    }

    fn builtin(kind: ProviderKind) -> Profile {
        Profile::builtin(kind, Environment::Sandbox).expect("builtin")
    }

    #[test]
    fn ares_refresh_is_form_with_redirect_uri_and_body_credentials() {
        let rt = RefreshToken::new("rt/1");
        let r = token_request(
            &builtin(ProviderKind::Ares),
            "cid",
            &ClientSecret::new("sec"),
            &Grant::RefreshToken {
                refresh_token: &rt,
                redirect_uri: "https://a.example/cb",
            },
        );
        assert_eq!(r.url, "https://oauth.joinares.com/oauth/token");
        assert_eq!(
            header(&r, "content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(header(&r, "authorization"), None);
        assert_eq!(
            r.body.as_ref().map(Secret::expose),
            Some(
                "grant_type=refresh_token&refresh_token=rt%2F1&redirect_uri=https%3A%2F%2Fa.example%2Fcb&client_id=cid&client_secret=sec"
            )
        );
    }

    #[test]
    fn askara_code_exchange_is_json() {
        let code = AuthorizationCode::new("c1");
        let r = token_request(
            &builtin(ProviderKind::Askara),
            "cid",
            &ClientSecret::new("sec"),
            &Grant::AuthorizationCode {
                code: &code,
                redirect_uri: "https://a.example/cb",
                code_verifier: None,
            },
        );
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        let body: Value =
            serde_json::from_str(r.body.as_ref().map(Secret::expose).unwrap_or_default())
                .expect("json");
        assert_eq!(body["grant_type"], "authorization_code");
        assert_eq!(body["redirect_uri"], "https://a.example/cb");
        assert_eq!(body["client_secret"], "sec");
    }

    #[test]
    fn arterra_uses_basic_and_a_minimal_json_body() {
        let rt = RefreshToken::new("r");
        let r = token_request(
            &builtin(ProviderKind::Arterra),
            "client_475ed119",
            &ClientSecret::new("secret_a5ee033782be4636cbefc8"),
            &Grant::RefreshToken {
                refresh_token: &rt,
                redirect_uri: "https://a.example/cb",
            },
        );
        // The document's own example value.
        assert_eq!(
            header(&r, "authorization"),
            Some("Basic Y2xpZW50XzQ3NWVkMTE5OnNlY3JldF9hNWVlMDMzNzgyYmU0NjM2Y2JlZmM4")
        );
        assert_eq!(
            r.body.as_ref().map(Secret::expose),
            Some(r#"{"grant_type":"refresh_token","refresh_token":"r"}"#)
        );
        assert_eq!(
            format!("{r:?}"),
            "POST https://staging.arterra.co/api/auth/oauth2-token"
        );
    }
}
