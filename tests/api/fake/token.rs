//! The token endpoint shared by all providers: decodes the request the way the provider's profile says,
//! authenticates the client, then redeems the grant (RFC 6749 §4.1.3, §4.3, §6) unless a fault is set.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{CACHE_CONTROL, PRAGMA};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::profile::{ClientAuth, Encoding, Profile, RefreshRedirect};
use super::registry::Issued;
use super::wire::{self, Params, Reject};
use super::{Inner, chaos, fault};

/// A grant after decoding, before it is checked against the registry.
enum Grant {
    Code {
        code: String,
        redirect_uri: Option<String>,
    },
    Refresh {
        refresh_token: String,
        redirect_uri: Option<String>,
    },
    Password {
        username: String,
        password: String,
    },
}

pub(super) async fn endpoint(
    State(fake): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    let delay = fake.lock().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let profile = fake.kind.profile();
    let params = decode(profile, &headers, &body)?;
    let (client_id, client_secret) = client_credentials(profile, &headers, &params)?;
    if client_id != fake.client_id {
        return Err(Reject::invalid_client(format!(
            "unknown client_id `{client_id}`"
        )));
    }
    if client_secret != fake.client_secret {
        return Err(Reject::invalid_client("wrong client_secret"));
    }
    let grant = parse_grant(profile, &params)?;

    let fault = fake.lock().fault.clone();
    if let Some(response) = fault::respond(&fault).await {
        return Ok(response);
    }
    let turn = chaos::draw(&fake);
    if let Some(response) = turn.before_work().await {
        return Ok(response);
    }
    let issued = redeem(&fake, grant)?;
    // A slow answer after the grant was spent: a client that dies now has
    // lost the new tokens while the provider already rotated.
    let answer_delay = fake.lock().answer_delay;
    if !answer_delay.is_zero() {
        tokio::time::sleep(answer_delay).await;
    }
    turn.after_work().await;
    Ok(token_response(issued))
}

fn decode(profile: &Profile, headers: &HeaderMap, body: &[u8]) -> Result<Params, Reject> {
    match profile.token_encoding {
        Encoding::Form => {
            wire::require_content_type(headers, "application/x-www-form-urlencoded")?;
            Params::from_form(body)
        }
        Encoding::Json => {
            wire::require_content_type(headers, "application/json")?;
            Params::from_json(body)
        }
    }
}

/// The client's id and secret, from wherever this provider takes them, and only from there.
pub(super) fn client_credentials(
    profile: &Profile,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(String, String), Reject> {
    let in_body = params.get("client_id").is_some() || params.get("client_secret").is_some();
    match profile.client_auth {
        ClientAuth::Body => {
            if wire::has_authorization(headers) {
                // RFC 6749 §2.3: "MUST NOT use more than one authentication method in each request".
                return Err(Reject::invalid_request(format!(
                    "{} takes client credentials in the body; an Authorization header is a second method",
                    profile.name
                )));
            }
            let id = params
                .get("client_id")
                .ok_or_else(|| Reject::invalid_client("no client_id in the body"))?;
            let secret = params
                .get("client_secret")
                .ok_or_else(|| Reject::invalid_client("no client_secret in the body"))?;
            Ok((id.to_owned(), secret.to_owned()))
        }
        ClientAuth::BasicOnly => {
            if in_body {
                return Err(Reject::invalid_request(format!(
                    "{} takes client credentials only in the Basic header, not in the body",
                    profile.name
                )));
            }
            wire::basic(headers).unwrap_or_else(|| {
                Err(Reject::invalid_client(
                    "no Authorization: Basic header with the client credentials",
                ))
            })
        }
    }
}

fn parse_grant(profile: &Profile, params: &Params) -> Result<Grant, Reject> {
    let grant_type = params.required("grant_type", "every token request")?;
    let owned = |name: &str, why: &str| params.required(name, why).map(str::to_owned);
    match grant_type {
        "authorization_code" => {
            let redirect_uri = if profile.code_needs_redirect_uri {
                Some(owned("redirect_uri", "the code exchange repeats it")?)
            } else {
                params.get("redirect_uri").map(str::to_owned)
            };
            Ok(Grant::Code {
                code: owned("code", "authorization_code grant")?,
                redirect_uri,
            })
        }
        "refresh_token" => {
            let redirect_uri = match profile.refresh_redirect_uri {
                RefreshRedirect::NotUsed => None,
                RefreshRedirect::Registered | RefreshRedirect::SameAsOriginal => Some(owned(
                    "redirect_uri",
                    &format!("{} refreshes need it", profile.name),
                )?),
            };
            Ok(Grant::Refresh {
                refresh_token: owned("refresh_token", "refresh_token grant")?,
                redirect_uri,
            })
        }
        "password" if profile.password_grant => Ok(Grant::Password {
            username: owned("username", "password grant")?,
            password: owned("password", "password grant")?,
        }),
        other => Err(Reject::unsupported_grant_type(format!(
            "{} does not offer grant_type `{other}`",
            profile.name
        ))),
    }
}

/// Checks the grant against what was issued and issues the new tokens.
fn redeem(fake: &Inner, grant: Grant) -> Result<Issued, Reject> {
    let profile = fake.kind.profile();
    let mut state = fake.lock();
    let expires_in = state.token_lifetime;
    let with_refresh_token = state.issue_refresh_tokens;
    let registry = &mut state.registry;
    let client_id = fake.client_id.as_str();
    match grant {
        Grant::Code { code, redirect_uri } => {
            let (user_id, redirect_uri) = registry
                .redeem_code(&code, client_id, redirect_uri.as_deref())
                .map_err(Reject::invalid_grant)?;
            Ok(registry.issue_tokens(
                profile,
                &user_id,
                client_id,
                Some(&redirect_uri),
                expires_in,
                with_refresh_token,
            ))
        }
        Grant::Refresh {
            refresh_token,
            redirect_uri,
        } => {
            let grant = registry
                .refresh_grant(&refresh_token)
                .map_err(Reject::invalid_grant)?;
            let given = redirect_uri.as_deref();
            match profile.refresh_redirect_uri {
                RefreshRedirect::NotUsed => {}
                RefreshRedirect::Registered => {
                    if !given.is_some_and(|uri| fake.redirect_uris.iter().any(|r| r == uri)) {
                        return Err(Reject::invalid_grant(format!(
                            "redirect_uri {given:?} is not registered"
                        )));
                    }
                }
                RefreshRedirect::SameAsOriginal => {
                    if given != grant.redirect_uri.as_deref() {
                        return Err(Reject::invalid_grant(format!(
                            "redirect_uri {given:?} differs from the original flow's {:?}",
                            grant.redirect_uri
                        )));
                    }
                }
            }
            let rotate = profile.rotates_refresh_tokens;
            if rotate {
                registry.revoke_refresh_token(&refresh_token);
            }
            registry.refreshes_accepted += 1;
            let redirect_uri = grant.redirect_uri.as_deref();
            Ok(registry.issue_tokens(
                profile,
                &grant.user_id,
                client_id,
                redirect_uri,
                expires_in,
                rotate,
            ))
        }
        Grant::Password { username, password } => {
            let user_id = registry
                .authenticate(&username, &password)
                .map_err(Reject::invalid_grant)?;
            Ok(registry.issue_tokens(
                profile,
                &user_id,
                client_id,
                None,
                expires_in,
                with_refresh_token,
            ))
        }
    }
}

/// RFC 6749 §5.1: the JSON answer, never cached.
fn token_response(issued: Issued) -> Response {
    let mut body = json!({ "access_token": issued.access_token, "token_type": "Bearer" });
    if let Some(secs) = issued.expires_in {
        body["expires_in"] = json!(secs);
    }
    if let Some(refresh_token) = issued.refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    (
        [(CACHE_CONTROL, "no-store"), (PRAGMA, "no-cache")],
        axum::Json(body),
    )
        .into_response()
}
