//! Provider profiles: each provider's endpoints and wire quirks as data. The
//! built-in kinds carry what their documents say; every knob can be
//! overridden in config, and the generic `oauth2` kind is nothing but knobs.

mod ares;
mod aries;
mod arterra;
mod askara;

use std::sync::Arc;

use serde::Deserialize;

use crate::{
    domain::{ClientSecret, ProviderId, RedirectUri},
    oidc::{Discovered, Oidc},
};

/// One configured provider: its profile, client credentials and redirect URIs.
#[derive(Debug)]
pub struct ProviderSetting {
    /// Config id, e.g. "ares".
    pub(crate) id: ProviderId,
    /// Endpoints and quirks after overrides.
    pub(crate) profile: Profile,
    /// OAuth client id.
    pub(crate) client_id: String,
    /// OAuth client secret.
    pub(crate) client_secret: ClientSecret,
    /// Registered redirect URIs; BeginAuth must use one of them.
    pub(crate) redirect_uris: Vec<RedirectUri>,
    /// Whether SignInWithPassword may use the password grant.
    pub(crate) allow_password_grant: bool,
    /// How hard the background refresher may press this provider.
    pub(crate) refresh: RefreshLimits,
    /// The provider's issuer identifier (RFC 9207): a callback's `iss` must
    /// equal it.
    pub(crate) issuer: Option<String>,
    /// Whether a callback without `iss` is refused.
    pub(crate) require_iss: bool,
    /// OpenID Connect: the issuer whose discovery fills the profile and
    /// whose `id_token`s name the account; `None` for plain OAuth2 kinds.
    pub(crate) oidc: Option<Arc<Oidc>>,
}

impl ProviderSetting {
    /// This oidc provider with its discovered metadata filled in; settings
    /// given in config keep their value.
    pub(crate) fn discovered(&self, oidc: &Oidc, found: &Discovered) -> ProviderSetting {
        let o = &oidc.overrides;
        let mut profile = self.profile.clone();
        profile.authorize_url = o
            .authorize_url
            .clone()
            .unwrap_or_else(|| found.authorize_url.clone());
        profile.token_url = o
            .token_url
            .clone()
            .unwrap_or_else(|| found.token_url.clone());
        profile.userinfo_url = o
            .userinfo_url
            .clone()
            .or_else(|| found.userinfo_url.clone());
        profile.revocation_url = o
            .revocation_url
            .clone()
            .or_else(|| found.revocation_url.clone());
        profile.client_auth = o.client_auth.unwrap_or(found.client_auth);
        ProviderSetting {
            id: self.id.clone(),
            profile,
            client_id: self.client_id.clone(),
            client_secret: ClientSecret::new(self.client_secret.secret()),
            redirect_uris: self.redirect_uris.clone(),
            allow_password_grant: self.allow_password_grant,
            refresh: self.refresh,
            issuer: self.issuer.clone(),
            // RFC 9207: an issuer that says it sends `iss` must send it.
            require_iss: o.require_iss.unwrap_or(found.iss_parameter),
            oidc: self.oidc.clone(),
        }
    }
}

/// Per-provider bounds on refreshing, from `[providers.<id>]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RefreshLimits {
    /// Background refreshes in flight at once, per replica.
    pub(crate) concurrency: usize,
    /// Refresh requests per second across all replicas, background and on
    /// demand together; `None` for no limit.
    pub(crate) rate_per_sec: Option<f64>,
    /// Renew a connection at least this often even when its access token
    /// lives longer (providers that expire unused refresh tokens).
    pub(crate) max_idle_secs: Option<i64>,
}

impl Default for RefreshLimits {
    fn default() -> Self {
        Self {
            concurrency: 16,
            rate_per_sec: None,
            max_idle_secs: None,
        }
    }
}

/// Which built-in profile a configured provider starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// ARES (documents 000 and 001).
    Ares,
    /// Aries (document 002).
    Aries,
    /// Askara (document 003).
    Askara,
    /// ARterra Labs (document 004).
    Arterra,
    /// Any RFC 6749 provider, described entirely by config.
    Oauth2,
    /// An OpenID Connect provider, described by its issuer's discovery
    /// document; `id_token`s are verified.
    Oidc,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// `Authorization: Basic base64(client_id:client_secret)` (RFC 6749 §2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the request body.
    Body,
}

/// How token request bodies are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyEncoding {
    /// `application/x-www-form-urlencoded` (RFC 6749 §4.1.3).
    Form,
    /// `application/json`.
    Json,
}

/// How a space is written in the authorization URL's query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuerySpace {
    /// `+`, as HTML forms do (`scope=read+write`).
    Plus,
    /// `%20` (`scope=profile%20organization`).
    Percent,
}

/// ARterra's two deployments (document 004: sandbox is staging.arterra.co).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Staging: `https://staging.arterra.co`.
    #[default]
    Sandbox,
    /// Production: `https://app.arterra.co`.
    Live,
}

/// Everything authbroker needs to know about a provider's protocol.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Where the end user is sent to log in and consent.
    pub authorize_url: String,
    /// Where codes, refresh tokens and passwords are exchanged for tokens.
    pub token_url: String,
    /// The user profile endpoint, if the provider has one.
    pub userinfo_url: Option<String>,
    /// The pay-per-use endpoint, if the provider has one.
    pub usage_url: Option<String>,
    /// The token revocation endpoint (RFC 7009), if the provider has one.
    pub revocation_url: Option<String>,
    /// Client authentication at the token endpoint.
    pub client_auth: ClientAuth,
    /// Token request body encoding.
    pub body_encoding: BodyEncoding,
    /// Joins scopes in the authorization URL.
    pub scope_separator: String,
    /// Scopes requested when the caller names none.
    pub default_scopes: Vec<String>,
    /// Whether the code exchange carries `redirect_uri`.
    pub code_redirect_uri: bool,
    /// Whether the refresh request carries `redirect_uri`.
    pub refresh_redirect_uri: bool,
    /// Lifetime assumed when a token answer has no `expires_in`.
    pub default_token_lifetime_secs: u64,
    /// Fixed extra query parameters for the authorization URL.
    pub extra_authorize_params: Vec<(String, String)>,
    /// `response_type` of a sign-up link, if the provider has them.
    pub sign_up_response_type: Option<String>,
    /// Callback parameter that names a new account awaiting email verification.
    pub pending_verification_param: Option<String>,
    /// Whether the provider offers the resource owner password grant.
    pub password_grant: bool,
    /// JSON field of the user endpoint's answer holding the account id.
    pub user_id_field: String,
    /// Whether to use PKCE (RFC 7636, S256).
    pub pkce: bool,
    /// How spaces are encoded in the authorization URL.
    pub query_space: QuerySpace,
    /// Whether the usage endpoint takes whole credits only.
    pub usage_whole_credits: bool,
}

impl Profile {
    /// The built-in profile of `kind`; `None` for `oauth2` and `oidc`, whose
    /// endpoints come from config or discovery.
    pub fn builtin(kind: ProviderKind, environment: Environment) -> Option<Profile> {
        match kind {
            ProviderKind::Ares => Some(ares::profile()),
            ProviderKind::Aries => Some(aries::profile()),
            ProviderKind::Askara => Some(askara::profile()),
            ProviderKind::Arterra => Some(arterra::profile(environment)),
            ProviderKind::Oauth2 | ProviderKind::Oidc => None,
        }
    }

    /// The RFC 6749 baseline the generic kind starts from before its config knobs apply.
    pub fn rfc6749(authorize_url: String, token_url: String) -> Profile {
        Profile {
            authorize_url,
            token_url,
            userinfo_url: None,
            usage_url: None,
            revocation_url: None,
            client_auth: ClientAuth::Basic,
            body_encoding: BodyEncoding::Form,
            scope_separator: " ".into(),
            default_scopes: Vec::new(),
            code_redirect_uri: true,
            refresh_redirect_uri: false,
            default_token_lifetime_secs: 3600,
            extra_authorize_params: Vec::new(),
            sign_up_response_type: None,
            pending_verification_param: None,
            password_grant: false,
            user_id_field: "sub".into(),
            // PKCE S256 unless the config turns it off (RFC 9700 2.1.1):
            // a generic provider is assumed to support it.
            pkce: true,
            query_space: QuerySpace::Plus,
            usage_whole_credits: false,
        }
    }
}
