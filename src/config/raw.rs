//! The TOML file's shape. Every struct denies unknown fields, so a typo is a
//! start-up error naming the key instead of a silently ignored setting.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::LogFormat;
use crate::providers::{BodyEncoding, ClientAuth, Environment, Profile, ProviderKind, QuerySpace};

/// The whole file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub(super) listen: Option<String>,
    pub(super) health_listen: Option<String>,
    pub(super) metrics_listen: Option<String>,
    pub(super) tls: Option<super::tls::RawTls>,
    pub(super) database_url: Option<String>,
    pub(super) migrate_on_start: Option<bool>,
    pub(super) state_ttl_secs: Option<u64>,
    pub(super) log_format: Option<LogFormat>,
    pub(super) encryption_key: Option<String>,
    pub(super) encryption_key_env: Option<String>,
    pub(super) encryption_key_file: Option<String>,
    pub(super) encryption_key_id: Option<String>,
    #[serde(default)]
    pub(super) encryption_keys: Vec<super::keys::RawKey>,
    pub(super) active_encryption_key_id: Option<String>,
    pub(super) refresh_window_secs: Option<u64>,
    pub(super) refresh_interval_secs: Option<u64>,
    pub(super) max_wait_secs: Option<u64>,
    pub(super) refresh_lease_secs: Option<u64>,
    pub(super) force_refresh_cooldown_secs: Option<u64>,
    pub(super) token_cache_ttl_ms: Option<u64>,
    pub(super) token_cache_capacity: Option<usize>,
    pub(super) health_check_interval_ms: Option<u64>,
    pub(super) usage_retention_days: Option<u64>,
    pub(super) audit_retention_days: Option<u64>,
    pub(super) shutdown_grace_secs: Option<u64>,
    #[serde(default)]
    pub(super) http: RawHttp,
    #[serde(default)]
    pub(super) server: super::server::RawServer,
    #[serde(default)]
    pub(super) callers: Vec<super::callers::RawCaller>,
    #[serde(default)]
    pub(super) providers: BTreeMap<String, RawProvider>,
}

/// `[http]`
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) connect_timeout_ms: Option<u64>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) max_response_bytes: Option<usize>,
}

/// `[providers.<id>]`: identity, endpoints, and the protocol knobs every kind accepts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) kind: Option<ProviderKind>,
    pub(super) environment: Option<Environment>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<String>,
    pub(super) client_secret_env: Option<String>,
    pub(super) client_secret_file: Option<String>,
    #[serde(default)]
    pub(super) redirect_uris: Vec<String>,
    pub(super) allow_password_grant: Option<bool>,
    pub(super) refresh_concurrency: Option<usize>,
    pub(super) refresh_rate_per_sec: Option<f64>,
    pub(super) refresh_token_max_idle_secs: Option<u64>,
    pub(super) authorize_url: Option<String>,
    pub(super) token_url: Option<String>,
    pub(super) userinfo_url: Option<String>,
    pub(super) usage_url: Option<String>,
    pub(super) revocation_url: Option<String>,
    pub(super) issuer: Option<String>,
    pub(super) require_iss: Option<bool>,
    client_auth: Option<ClientAuth>,
    body_encoding: Option<BodyEncoding>,
    scope_separator: Option<String>,
    default_scopes: Option<Vec<String>>,
    code_redirect_uri: Option<bool>,
    refresh_redirect_uri: Option<bool>,
    default_token_lifetime_secs: Option<u64>,
    extra_authorize_params: Option<BTreeMap<String, String>>,
    sign_up_response_type: Option<String>,
    pending_verification_param: Option<String>,
    password_grant: Option<bool>,
    user_id_field: Option<String>,
    pkce: Option<bool>,
    query_space: Option<QuerySpace>,
    usage_whole_credits: Option<bool>,
}

impl RawProvider {
    /// `client_auth`, if set.
    pub(super) fn client_auth(&self) -> Option<ClientAuth> {
        self.client_auth
    }

    /// Overrides the profile's knobs with those set in config.
    pub(super) fn apply_knobs(&self, p: &mut Profile) {
        fn set<T: Clone>(target: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *target = v.clone();
            }
        }
        set(&mut p.client_auth, &self.client_auth);
        set(&mut p.body_encoding, &self.body_encoding);
        set(&mut p.scope_separator, &self.scope_separator);
        set(&mut p.default_scopes, &self.default_scopes);
        set(&mut p.code_redirect_uri, &self.code_redirect_uri);
        set(&mut p.refresh_redirect_uri, &self.refresh_redirect_uri);
        set(
            &mut p.default_token_lifetime_secs,
            &self.default_token_lifetime_secs,
        );
        set(&mut p.password_grant, &self.password_grant);
        set(&mut p.user_id_field, &self.user_id_field);
        set(&mut p.pkce, &self.pkce);
        set(&mut p.query_space, &self.query_space);
        set(&mut p.usage_whole_credits, &self.usage_whole_credits);
        if let Some(params) = &self.extra_authorize_params {
            p.extra_authorize_params = params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        }
        if let Some(rt) = &self.sign_up_response_type {
            p.sign_up_response_type = Some(rt.clone()).filter(|s| !s.is_empty());
        }
        if let Some(param) = &self.pending_verification_param {
            p.pending_verification_param = Some(param.clone()).filter(|s| !s.is_empty());
        }
    }
}
