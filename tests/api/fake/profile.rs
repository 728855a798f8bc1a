//! The shape of one provider, as data. Each provider file fills one `Profile` from its document, so the
//! shared endpoint code (authorize page, token endpoint) has one code path and the quirks stay next to
//! the document lines that justify them.

use std::time::Duration;

/// Everything the shared endpoints need to know about one provider.
pub(super) struct Profile {
    /// Human-readable name, used in rejection reasons.
    pub name: &'static str,
    /// Path of the page the end user is sent to.
    pub authorize_path: &'static str,
    /// Path of the token endpoint.
    pub token_path: &'static str,
    /// Path of the bearer-protected user endpoint, if the provider has one.
    pub userinfo_path: Option<&'static str>,
    /// Path of the usage (credits) endpoint, if the provider has one.
    pub usage_path: Option<&'static str>,
    /// What the authorize page demands of the link.
    pub authorize: AuthorizeRules,
    /// How a code stays valid after it was issued.
    pub code_lifetime: Duration,
    /// `expires_in` of issued access tokens until a test changes it; `None` omits the field.
    pub expires_in: Option<u64>,
    /// Body encoding the token endpoint accepts.
    pub token_encoding: Encoding,
    /// Where the token endpoint expects the client credentials.
    pub client_auth: ClientAuth,
    /// Whether the code exchange must repeat the `redirect_uri` (RFC 6749 §4.1.3 says yes when the
    /// authorization request had one; ARterra's document omits it).
    pub code_needs_redirect_uri: bool,
    /// What the refresh grant demands of `redirect_uri`.
    pub refresh_redirect_uri: RefreshRedirect,
    /// Whether a refresh answer carries a new refresh token and kills the old one.
    pub rotates_refresh_tokens: bool,
    /// Whether the resource-owner password grant is offered.
    pub password_grant: bool,
    /// What issued access tokens look like.
    pub access_token_shape: TokenShape,
    /// Random bytes (hex-encoded) in a refresh token.
    pub refresh_token_bytes: usize,
}

/// Rules of the authorize page.
pub(super) struct AuthorizeRules {
    /// Accepted values of `response_type`.
    pub response_types: &'static [&'static str],
    /// Whether a non-empty `scope` is required.
    pub scope_required: bool,
    /// What the page does with a link it cannot honour.
    pub bad_link: BadLink,
    /// Whether a new user can sign up from the page (and then has to verify the email first).
    pub sign_up: bool,
}

/// Answer of the authorize page to a broken link.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum BadLink {
    /// RFC 6749 §4.1.2.1: an error page when client or redirect URI is wrong, otherwise a redirect
    /// to the client with `error=...`.
    Rfc,
    /// Every broken link lands on the provider's main page (a 302 to `/`).
    RedirectHome,
}

/// Token request body encoding.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Encoding {
    /// `application/x-www-form-urlencoded` (RFC 6749 §4.1.3).
    Form,
    /// `application/json` with string values.
    Json,
}

/// Client authentication at the token endpoint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientAuth {
    /// `client_id` and `client_secret` in the body; an Authorization header as well is a second
    /// method, which RFC 6749 §2.3 forbids.
    Body,
    /// `Authorization: Basic` only; credentials in the body are rejected.
    BasicOnly,
}

/// The refresh grant's `redirect_uri`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum RefreshRedirect {
    /// Not part of the grant; ignored when sent.
    NotUsed,
    /// Required and must be one of the registered URIs.
    Registered,
    /// Required and must equal the URI of the flow that produced the refresh token.
    SameAsOriginal,
}

/// Access token format.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenShape {
    /// That many random bytes, hex-encoded.
    Hex(usize),
    /// A JWT-looking `header.payload.signature` (base64url) with a random signature.
    Jwt,
}
