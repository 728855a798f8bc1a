//! The authorization endpoint (OIDC Core §3.1.2): checks the link the broker built, plays the end user
//! who approves, and redirects back with a code, the state and, per RFC 9207, `iss`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use url::Url;

use super::grants::Authorization;
use super::wire::{Params, Reject};
use super::{Inner, unix_now};

/// The prompt values OIDC Core §3.1.2.1 defines.
const PROMPTS: [&str; 4] = ["none", "login", "consent", "select_account"];

/// An error to send back to the client: the RFC 6749 §4.1.2.1 `error` code and the reason.
type Refusal = (&'static str, String);

/// What a well-formed request carries.
struct Link<'a> {
    scope: &'a str,
    state: &'a str,
    nonce: &'a str,
    code_challenge: &'a str,
}

pub(super) async fn page(
    State(fake): State<Arc<Inner>>,
    RawQuery(query): RawQuery,
) -> Result<Response, Reject> {
    let query = query.unwrap_or_default();
    let params = Params::from_query(&query)
        .map_err(|reason| Reject::page(StatusCode::BAD_REQUEST, reason))?;
    // §4.1.2.1: with an unknown client or redirect URI, show an error, never redirect.
    match params.get("client_id") {
        Some(id) if id == fake.client_id => {}
        other => {
            let reason = format!("unknown client_id {other:?}");
            return Err(Reject::page(StatusCode::BAD_REQUEST, reason));
        }
    }
    match params.get("redirect_uri") {
        Some(uri) if uri == fake.redirect_uri => {}
        other => {
            let reason = format!(
                "redirect_uri {other:?} is not the registered `{}`",
                fake.redirect_uri
            );
            return Err(Reject::page(StatusCode::BAD_REQUEST, reason));
        }
    }

    let iss = fake.lock().callback_iss.clone();
    let link = match check(&params) {
        Ok(link) => link,
        Err((error, reason)) => {
            let mut pairs = vec![
                ("error", error.to_owned()),
                ("error_description", reason.clone()),
            ];
            pairs.extend(params.get("state").map(|s| ("state", s.to_owned())));
            // RFC 9207 §2: error responses carry `iss` too.
            pairs.extend(iss.map(|iss| ("iss", iss)));
            return Err(Reject::redirect(
                callback(&fake.redirect_uri, &pairs),
                reason,
            ));
        }
    };

    let code = {
        let mut state = fake.lock();
        state.last_nonce = Some(link.nonce.to_owned());
        state.grants.issue_code(Authorization {
            nonce: link.nonce.to_owned(),
            code_challenge: link.code_challenge.to_owned(),
            scope: link.scope.to_owned(),
            redirect_uri: fake.redirect_uri.clone(),
            auth_time: unix_now(),
        })
    };
    let mut pairs = vec![("code", code), ("state", link.state.to_owned())];
    pairs.extend(iss.map(|iss| ("iss", iss)));
    let location = callback(&fake.redirect_uri, &pairs);
    Ok((StatusCode::FOUND, [(LOCATION, location)]).into_response())
}

/// Every rule after the client and redirect URI are known good.
fn check(params: &Params) -> Result<Link<'_>, Refusal> {
    let missing = |name: &str| ("invalid_request", format!("missing `{name}`"));
    match params.get("response_type") {
        Some("code") => {}
        None => return Err(missing("response_type")),
        Some(other) => {
            let reason = format!("response_type `{other}`: only `code` is offered");
            return Err(("unsupported_response_type", reason));
        }
    }
    let scope = params.get("scope").ok_or_else(|| missing("scope"))?;
    check_scope(scope)?;
    let state = params.get("state").ok_or_else(|| missing("state"))?;
    let nonce = params.get("nonce").ok_or_else(|| missing("nonce"))?;
    let code_challenge = params
        .get("code_challenge")
        .ok_or_else(|| missing("code_challenge"))?;
    if !super::pkce::is_s256_challenge(code_challenge) {
        let reason = format!("code_challenge `{code_challenge}` is not 43 base64url characters");
        return Err(("invalid_request", reason));
    }
    match params.get("code_challenge_method") {
        Some("S256") => {}
        None => return Err(missing("code_challenge_method")),
        Some(other) => {
            // RFC 7636 §4.4.1; `plain` would show the verifier to whoever sees the link.
            let reason = format!("code_challenge_method `{other}`: only S256 is offered");
            return Err(("invalid_request", reason));
        }
    }
    check_optional(params)?;
    Ok(Link {
        scope,
        state,
        nonce,
        code_challenge,
    })
}

/// RFC 6749 §3.3 scope tokens, one of which is `openid` (OIDC Core §3.1.2.1).
fn check_scope(scope: &str) -> Result<(), Refusal> {
    let is_token_char =
        |b: u8| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b);
    if let Some(bad) = scope
        .split(' ')
        .find(|token| token.is_empty() || !token.bytes().all(is_token_char))
    {
        let reason = format!("scope `{scope}` has a malformed scope token `{bad}`");
        return Err(("invalid_scope", reason));
    }
    if !scope.split(' ').any(|token| token == "openid") {
        let reason = format!("scope `{scope}` lacks `openid`: not an OpenID Connect request");
        return Err(("invalid_scope", reason));
    }
    Ok(())
}

/// The optional OIDC Core §3.1.2.1 parameters, checked only for values this provider cannot honour.
fn check_optional(params: &Params) -> Result<(), Refusal> {
    if let Some(prompt) = params.get("prompt") {
        let values: Vec<&str> = prompt.split(' ').collect();
        if let Some(unknown) = values.iter().find(|v| !PROMPTS.contains(*v)) {
            return Err((
                "invalid_request",
                format!("unknown prompt value `{unknown}`"),
            ));
        }
        if values.len() > 1 && values.contains(&"none") {
            let reason = "prompt `none` combined with another value".to_owned();
            return Err(("invalid_request", reason));
        }
    }
    if let Some(mode) = params.get("response_mode")
        && mode != "query"
    {
        return Err((
            "invalid_request",
            format!("response_mode `{mode}`: only `query`"),
        ));
    }
    if let Some(max_age) = params.get("max_age")
        && max_age.parse::<u64>().is_err()
    {
        return Err((
            "invalid_request",
            format!("max_age `{max_age}` is not seconds"),
        ));
    }
    // §6: request objects are not offered, and say so with their own error codes.
    for (name, error) in [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
        ("registration", "registration_not_supported"),
    ] {
        if params.get(name).is_some() {
            return Err((error, format!("`{name}` is not supported")));
        }
    }
    Ok(())
}

/// The redirect URI with `pairs` appended to its query.
fn callback(redirect_uri: &str, pairs: &[(&str, String)]) -> String {
    let mut url = Url::parse(redirect_uri).expect("the redirect URI was checked at start");
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
    }
    url.into()
}
