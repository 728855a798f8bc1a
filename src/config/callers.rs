//! `[[callers]]`: who may call, how each proves it (one or several bearer
//! tokens, so a token can be rotated without downtime), its rate limit and
//! its policy. Every name, token and rule is checked here, at start-up.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{CallerSetting, resolve_secret, valid_name};
use crate::{domain::Policy, providers::ProviderSetting, secret::Secret};

/// The RPC method names a policy's `rpcs` may list.
pub const RPCS: [&str; 11] = [
    "BeginAuth",
    "CompleteAuth",
    "SignInWithPassword",
    "GetAccessToken",
    "GetUserInfo",
    "RecordUsage",
    "ResolveUsage",
    "GetConnection",
    "ListConnections",
    "RevokeConnection",
    "UpdateConnectionLabels",
];

/// `[[callers]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCaller {
    name: String,
    token: Option<String>,
    token_env: Option<String>,
    token_file: Option<String>,
    #[serde(default)]
    tokens: Vec<String>,
    #[serde(default)]
    tokens_env: Vec<String>,
    #[serde(default)]
    tokens_file: Vec<String>,
    #[serde(default)]
    spiffe_ids: Vec<String>,
    #[serde(default)]
    dns_names: Vec<String>,
    rate_limit_per_second: Option<f64>,
    rate_limit_burst: Option<u32>,
    providers: Option<Vec<String>>,
    rpcs: Option<Vec<String>>,
    redirect_uris: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    allow_password_grant: Option<bool>,
    max_credits_per_call: Option<f64>,
    max_credits_per_day: Option<f64>,
}

/// Resolves every caller against the configured providers.
/// `mtls`: whether client certificates are verified (`tls.client_ca_file`),
/// without which a caller cannot be known by one.
pub(super) fn resolve(
    raw: Vec<RawCaller>,
    providers: &BTreeMap<String, ProviderSetting>,
    env: &BTreeMap<String, String>,
    mtls: bool,
) -> Result<Vec<CallerSetting>, String> {
    let mut callers: Vec<CallerSetting> = Vec::new();
    for (i, caller) in raw.into_iter().enumerate() {
        let field = format!("callers[{i}]");
        if !valid_name(&caller.name, 128) {
            return Err(format!(
                "{field}.name: 1 to 128 characters of a-z A-Z 0-9 . _ -"
            ));
        }
        if callers.iter().any(|c| c.name == caller.name) {
            return Err(format!(
                "{field}.name: {:?} is configured twice",
                caller.name
            ));
        }
        let (spiffe_ids, dns_names) = identities(&field, &caller, mtls)?;
        for id in spiffe_ids.iter().chain(&dns_names) {
            if let Some(other) = callers
                .iter()
                .find(|c| c.spiffe_ids.contains(id) || c.dns_names.contains(id))
            {
                return Err(format!(
                    "{field}: identity {id:?} is also {:?}'s; each caller needs its own",
                    other.name
                ));
            }
        }
        let by_certificate = !(spiffe_ids.is_empty() && dns_names.is_empty());
        let tokens = tokens(&field, &caller, env, by_certificate)?;
        for hash in &tokens {
            if let Some(other) = callers.iter().find(|c| c.token_sha256s.contains(hash)) {
                return Err(format!(
                    "{field}: a token of {:?} is also a token of {:?}; each caller needs its own",
                    caller.name, other.name
                ));
            }
        }
        let rate_limit = rate_limit(&field, &caller)?;
        let policy = policy(&field, &caller, providers)?;
        callers.push(CallerSetting {
            name: caller.name,
            token_sha256s: tokens,
            spiffe_ids,
            dns_names,
            rate_limit,
            policy,
        });
    }
    Ok(callers)
}

/// The workload identities (from a verified client certificate) that make
/// a call this caller's.
fn identities(
    field: &str,
    caller: &RawCaller,
    mtls: bool,
) -> Result<(Vec<String>, Vec<String>), String> {
    let has_identities = !(caller.spiffe_ids.is_empty() && caller.dns_names.is_empty());
    if has_identities && !mtls {
        return Err(format!(
            "{field}: spiffe_ids and dns_names need verified client certificates ([tls] client_ca_file)"
        ));
    }
    for id in &caller.spiffe_ids {
        let valid = id
            .strip_prefix("spiffe://")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(domain, path)| {
                !domain.is_empty() && !path.is_empty() && !id.contains(['?', '#', ' '])
            });
        if !valid {
            return Err(format!(
                "{field}.spiffe_ids: {id:?} is not a SPIFFE ID like spiffe://cluster.local/ns/x/sa/y"
            ));
        }
    }
    if caller
        .dns_names
        .iter()
        .any(|n| n.is_empty() || n.len() > 253 || n.contains([' ', '/', '*']))
    {
        return Err(format!("{field}.dns_names: plain DNS names, no wildcards"));
    }
    Ok((caller.spiffe_ids.clone(), caller.dns_names.clone()))
}

/// The SHA-256 of every token the caller may present; none is needed by a
/// caller known by its certificate.
fn tokens(
    field: &str,
    caller: &RawCaller,
    env: &BTreeMap<String, String>,
    by_certificate: bool,
) -> Result<Vec<[u8; 32]>, String> {
    let mut secrets: Vec<Secret> = resolve_secret(
        &format!("{field}.token"),
        caller.token.clone(),
        caller.token_env.clone(),
        caller.token_file.clone(),
        env,
    )?
    .into_iter()
    .collect();
    for (i, value) in caller.tokens.iter().enumerate() {
        let name = format!("{field}.tokens[{i}]");
        secrets.extend(resolve_secret(&name, Some(value.clone()), None, None, env)?);
    }
    for (i, var) in caller.tokens_env.iter().enumerate() {
        let name = format!("{field}.tokens_env[{i}]");
        secrets.extend(resolve_secret(&name, None, Some(var.clone()), None, env)?);
    }
    for (i, path) in caller.tokens_file.iter().enumerate() {
        let name = format!("{field}.tokens_file[{i}]");
        secrets.extend(resolve_secret(&name, None, None, Some(path.clone()), env)?);
    }
    if secrets.is_empty() && !by_certificate {
        return Err(format!(
            "{field}.token: one of token, token_env, token_file, tokens, tokens_env or tokens_file is required (or spiffe_ids / dns_names with mTLS)"
        ));
    }
    let mut hashes: Vec<[u8; 32]> = Vec::new();
    for secret in &secrets {
        if secret.expose().len() < 16 {
            return Err(format!(
                "{field}.token: every token must be at least 16 characters"
            ));
        }
        let hash: [u8; 32] = Sha256::digest(secret.expose().as_bytes()).into();
        if !hashes.contains(&hash) {
            hashes.push(hash);
        }
    }
    Ok(hashes)
}

fn rate_limit(field: &str, caller: &RawCaller) -> Result<Option<(f64, u32)>, String> {
    match (caller.rate_limit_per_second, caller.rate_limit_burst) {
        (None, None) => Ok(None),
        (Some(rate), burst) if rate > 0.0 && rate.is_finite() => {
            // A second's worth by default, at least one call.
            let burst = burst.unwrap_or(rate.ceil().min(f64::from(u32::MAX)) as u32);
            if burst == 0 {
                return Err(format!("{field}.rate_limit_burst: at least 1"));
            }
            Ok(Some((rate, burst)))
        }
        (Some(_), _) => Err(format!("{field}.rate_limit_per_second: a positive number")),
        (None, Some(_)) => Err(format!(
            "{field}.rate_limit_burst: needs rate_limit_per_second"
        )),
    }
}

fn policy(
    field: &str,
    caller: &RawCaller,
    providers: &BTreeMap<String, ProviderSetting>,
) -> Result<Policy, String> {
    let set = |values: &Option<Vec<String>>| {
        values
            .as_ref()
            .map(|v| v.iter().cloned().collect::<BTreeSet<String>>())
    };
    let policy = Policy {
        providers: set(&caller.providers),
        rpcs: set(&caller.rpcs),
        redirect_uris: set(&caller.redirect_uris),
        scopes: set(&caller.scopes),
        allow_password_grant: caller.allow_password_grant.unwrap_or(true),
        max_credits_per_call: caller.max_credits_per_call,
        max_credits_per_day: caller.max_credits_per_day,
    };
    for id in policy.providers.iter().flatten() {
        if !providers.contains_key(id) {
            return Err(format!(
                "{field}.providers: {id:?} is not a configured provider"
            ));
        }
    }
    for rpc in policy.rpcs.iter().flatten() {
        if !RPCS.contains(&rpc.as_str()) {
            return Err(format!(
                "{field}.rpcs: {rpc:?} is not an RPC of the service (one of {})",
                RPCS.join(", ")
            ));
        }
    }
    for uri in policy.redirect_uris.iter().flatten() {
        let registered = providers
            .iter()
            .filter(|(id, _)| policy.provider(id).is_ok())
            .any(|(_, p)| p.redirect_uris.iter().any(|r| r.as_str() == uri));
        if !registered {
            return Err(format!(
                "{field}.redirect_uris: {uri:?} is not a redirect URI of any provider this caller may use"
            ));
        }
    }
    if policy
        .scopes
        .iter()
        .flatten()
        .any(|s| s.is_empty() || s.contains(' '))
    {
        return Err(format!(
            "{field}.scopes: scopes are non-empty, without spaces"
        ));
    }
    for (key, value) in [
        ("max_credits_per_call", policy.max_credits_per_call),
        ("max_credits_per_day", policy.max_credits_per_day),
    ] {
        if value.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            return Err(format!("{field}.{key}: a positive number"));
        }
    }
    Ok(policy)
}
