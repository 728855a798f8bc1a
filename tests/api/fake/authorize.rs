//! The authorize page shared by all providers: checks the link the broker built, then acts out the end
//! user's decision (headers `x-fake-user`, `x-fake-decision`) and redirects back with the outcome.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use url::Url;

use super::Inner;
use super::profile::BadLink;
use super::registry::User;
use super::wire::{Params, Reject};

/// Header naming the user who signs in (or signs up) at the page.
pub(super) const USER_HEADER: &str = "x-fake-user";
/// Header with the user's choice: absent means approve.
pub(super) const DECISION_HEADER: &str = "x-fake-decision";
pub(super) const DENY: &str = "deny";
pub(super) const SIGN_UP_UNVERIFIED: &str = "signup-unverified";

/// The link after validation: what the decision needs.
struct Link {
    redirect_uri: String,
    state: Option<String>,
}

pub(super) async fn page(
    State(fake): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Reject> {
    let link = validate(&fake, query.as_deref().unwrap_or(""))?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut params = Vec::new();
    match header(DECISION_HEADER).as_deref() {
        None => {
            let user_id = header(USER_HEADER).ok_or_else(|| {
                Reject::page(StatusCode::BAD_REQUEST, "approve needs x-fake-user")
            })?;
            params.push(("code", approve(&fake, &user_id, &link.redirect_uri)?));
        }
        Some(DENY) => {
            params.push(("error", "access_denied".to_owned()));
            params.push((
                "error_description",
                "The user denied the request".to_owned(),
            ));
        }
        Some(SIGN_UP_UNVERIFIED) if fake.kind.profile().authorize.sign_up => {
            let user_id = header(USER_HEADER).ok_or_else(|| {
                Reject::page(StatusCode::BAD_REQUEST, "sign-up needs x-fake-user")
            })?;
            sign_up_unverified(&fake, &user_id)?;
            // Doc 004 lines 136-139: a new, unverified user comes back with userId and no code.
            params.push(("userId", user_id));
        }
        Some(other) => {
            let reason = format!("this provider has no `{other}` decision");
            return Err(Reject::page(StatusCode::BAD_REQUEST, reason));
        }
    }
    if let Some(state) = link.state {
        params.push(("state", state));
    }
    let location = callback(&link.redirect_uri, &params);
    Ok((StatusCode::FOUND, [(LOCATION, location)]).into_response())
}

/// Checks the query string of the link against the provider's rules.
fn validate(fake: &Inner, query: &str) -> Result<Link, Reject> {
    let profile = fake.kind.profile();
    let rules = &profile.authorize;
    let untrusted = |reason: String| match rules.bad_link {
        // RFC 6749 §4.1.2.1: with a bad client or redirect URI, show an error, never redirect.
        BadLink::Rfc => Reject::page(StatusCode::BAD_REQUEST, reason),
        BadLink::RedirectHome => Reject::redirect(format!("{}/", fake.base_url), reason),
    };
    let params = Params::from_pairs(url::form_urlencoded::parse(query.as_bytes()).into_owned())
        .map_err(|_| untrusted(format!("a parameter appears twice in `{query}`")))?;

    match params.get("client_id") {
        Some(id) if id == fake.client_id => {}
        other => return Err(untrusted(format!("unknown client_id {other:?}"))),
    }
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri)
            if fake
                .redirect_uris
                .iter()
                .any(|registered| registered == uri) =>
        {
            uri.to_owned()
        }
        other => {
            return Err(untrusted(format!(
                "redirect_uri {other:?} is not registered exactly"
            )));
        }
    };
    let state = params.get("state").map(str::to_owned);

    // The client and redirect URI are trusted now: RFC 6749 §4.1.2.1 reports other errors there.
    let back = |error: &str, reason: String| match rules.bad_link {
        BadLink::Rfc => {
            let mut pairs = vec![
                ("error", error.to_owned()),
                ("error_description", reason.clone()),
            ];
            pairs.extend(state.clone().map(|s| ("state", s)));
            Reject::redirect(callback(&redirect_uri, &pairs), reason)
        }
        BadLink::RedirectHome => untrusted(reason),
    };
    match params.get("response_type") {
        Some(kind) if rules.response_types.contains(&kind) => {}
        None => return Err(back("invalid_request", "missing response_type".into())),
        Some(kind) => {
            let reason = format!(
                "response_type `{kind}` is not one of {:?}",
                rules.response_types
            );
            return Err(back("unsupported_response_type", reason));
        }
    }
    if rules.scope_required && params.get("scope").is_none() {
        // RFC 6749 §3.3: no default scope, so a missing scope fails as invalid_scope.
        return Err(back(
            "invalid_scope",
            format!("{} links must carry a scope", profile.name),
        ));
    }
    Ok(Link {
        redirect_uri,
        state,
    })
}

fn approve(fake: &Inner, user_id: &str, redirect_uri: &str) -> Result<String, Reject> {
    let profile = fake.kind.profile();
    let mut state = fake.lock();
    let user = state.registry.user(user_id).ok_or_else(|| {
        let reason = format!("no user `{user_id}` at the fake: call add_user first");
        Reject::page(StatusCode::BAD_REQUEST, reason)
    })?;
    if !user.email_verified {
        // Doc 004 line 136: "he can not sign in until his email got verified".
        let reason = format!("user `{user_id}` cannot sign in before verifying the email");
        return Err(Reject::page(StatusCode::FORBIDDEN, reason));
    }
    let lifetime = profile.code_lifetime;
    Ok(state
        .registry
        .issue_code(user_id, &fake.client_id, redirect_uri, lifetime))
}

fn sign_up_unverified(fake: &Inner, user_id: &str) -> Result<(), Reject> {
    let mut state = fake.lock();
    if state.registry.user(user_id).is_some() {
        let reason = format!("user `{user_id}` already exists, cannot sign up again");
        return Err(Reject::page(StatusCode::CONFLICT, reason));
    }
    state.registry.add_user(User {
        id: user_id.to_owned(),
        email: format!("{user_id}@example.test"),
        password: String::new(),
        credits: 0,
        email_verified: false,
    });
    Ok(())
}

/// The redirect URI with the outcome appended to its query.
fn callback(redirect_uri: &str, pairs: &[(&str, String)]) -> String {
    let mut url = Url::parse(redirect_uri).expect("registered redirect URIs are checked at start");
    url.query_pairs_mut()
        .extend_pairs(pairs.iter().map(|(k, v)| (k, v.as_str())));
    url.to_string()
}
