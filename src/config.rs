//! Typed settings: a TOML file layered with `AUTHBROKER_*` environment
//! variables. Unknown keys in either are an error naming the key, and no
//! secret is ever printed (Debug of every secret-bearing type is redacted).

mod callers;
mod keys;
mod raw;
mod secrets;
mod server;
mod tls;
mod toml_error;

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use crate::{
    domain::{ClientSecret, ProviderId, RedirectUri},
    providers::{Environment, Profile, ProviderKind, ProviderSetting, RefreshLimits},
    secret::Secret,
};
pub use callers::RPCS;
use raw::{RawConfig, RawProvider};
use secrets::resolve_secret;
pub use server::ServerLimits;
pub use tls::TlsSettings;

/// Every environment variable authbroker reads, in one place.
pub mod env {
    /// Path of the TOML config file (or `--config`).
    pub const CONFIG: &str = "AUTHBROKER_CONFIG";
    /// Overrides `listen`.
    pub const LISTEN: &str = "AUTHBROKER_LISTEN";
    /// Overrides `database_url`; wins over [`DATABASE_URL`].
    pub const DATABASE: &str = "AUTHBROKER_DATABASE_URL";
    /// The conventional variable; overrides `database_url`.
    pub const DATABASE_URL: &str = "DATABASE_URL";
    /// Overrides `encryption_key` (base64 of 32 bytes).
    pub const ENCRYPTION_KEY: &str = "AUTHBROKER_ENCRYPTION_KEY";
    /// Overrides `encryption_key_id`.
    pub const ENCRYPTION_KEY_ID: &str = "AUTHBROKER_ENCRYPTION_KEY_ID";
    /// Overrides `log_format` (`text` or `json`).
    pub const LOG_FORMAT: &str = "AUTHBROKER_LOG_FORMAT";
    /// Log filter, e.g. `info,authbroker=debug`.
    pub const LOG: &str = "AUTHBROKER_LOG";
    /// Overrides `migrate_on_start`.
    pub const MIGRATE_ON_START: &str = "AUTHBROKER_MIGRATE_ON_START";
    /// Overrides `state_ttl_secs`.
    pub const STATE_TTL_SECS: &str = "AUTHBROKER_STATE_TTL_SECS";

    /// The `AUTHBROKER_*` names that are allowed; any other is a typo.
    pub const KNOWN: &[&str] = &[
        CONFIG,
        LISTEN,
        DATABASE,
        ENCRYPTION_KEY,
        ENCRYPTION_KEY_ID,
        LOG_FORMAT,
        LOG,
        MIGRATE_ON_START,
        STATE_TTL_SECS,
    ];
}

/// Default listen address: loopback, so an unconfigured laptop run is private.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// The embedded default database, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/authbroker.db";

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The resolved configuration the service runs with. Its Debug output hides
/// the database password; every secret field is a redacting type.
pub struct Settings {
    /// Address the gRPC server binds.
    pub listen: SocketAddr,
    /// A plaintext address serving only `grpc.health.v1`, for probes.
    pub health_listen: Option<SocketAddr>,
    /// A plaintext address serving `/metrics` (Prometheus text format).
    pub metrics_listen: Option<SocketAddr>,
    /// TLS on `listen`.
    pub tls: Option<TlsSettings>,
    /// Database connection URL (`sqlite://…` or `postgres://…`).
    pub database_url: String,
    /// Run migrations before serving.
    pub migrate_on_start: bool,
    /// How long a BeginAuth state stays usable.
    pub state_ttl: Duration,
    /// Log output format.
    pub log_format: LogFormat,
    /// Where the sealing key comes from.
    pub key: KeySetting,
    /// Services allowed to call; empty means unauthenticated (loopback only).
    pub callers: Vec<CallerSetting>,
    /// Configured providers by id.
    pub providers: BTreeMap<String, ProviderSetting>,
    /// Outbound HTTP limits.
    pub http: HttpSettings,
    /// Token serving and refresh.
    pub tokens: TokenSettings,
    /// How often the database is probed for the health status.
    pub health_check_interval: Duration,
    /// Settled usage ledger rows older than this are deleted.
    pub usage_retention: Duration,
    /// Audit events older than this are deleted.
    pub audit_retention: Duration,
    /// After SIGTERM, how long in-flight calls may take before the process exits.
    pub shutdown_grace: Duration,
    /// The gRPC server's limits (`[server]`).
    pub server: ServerLimits,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("health_listen", &self.health_listen)
            .field("metrics_listen", &self.metrics_listen)
            .field("tls", &self.tls)
            .field("database_url", &redact_database_url(&self.database_url))
            .field("migrate_on_start", &self.migrate_on_start)
            .field("state_ttl", &self.state_ttl)
            .field("log_format", &self.log_format)
            .field("key", &self.key)
            .field("callers", &self.callers)
            .field("providers", &self.providers)
            .field("http", &self.http)
            .field("tokens", &self.tokens)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// A database URL fit for messages and logs: the password replaced, and
/// nothing at all of a URL that does not parse.
pub fn redact_database_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparseable database URL>".to_owned(),
    }
}

/// How tokens are cached and refreshed.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// Connections expiring within this window are refreshed in the background.
    pub refresh_window: Duration,
    /// How often the background refresher looks; `None` turns it off.
    pub refresh_interval: Option<Duration>,
    /// Longest a call without a deadline waits for work in progress (a
    /// refresh, its own or another replica's; a usage report with the same
    /// key) before answering REFRESH_IN_PROGRESS / USAGE_IN_PROGRESS; a
    /// GetAccessToken with a deadline waits less.
    pub max_wait: Duration,
    /// How long a refresh lease lasts unless its holder renews it (every
    /// second): the longest a dead holder blocks a connection (on
    /// PostgreSQL a killed process's leases go after about 2 s, see
    /// `flow::liveness`).
    pub refresh_lease: Duration,
    /// A token issued this recently is returned for `force_refresh` (and for
    /// a `min_valid_seconds` beyond any token's life) instead of rotating again.
    pub refresh_cooldown: Duration,
    /// How long a cached token is served without reading the database: the
    /// bound on how stale a replica's view of a refresh or revoke elsewhere can be.
    pub cache_ttl: Duration,
    /// Most connections cached at once.
    pub cache_capacity: usize,
}

/// The sealing key's origin.
#[derive(Debug)]
pub enum KeySetting {
    /// Given in config or the environment (base64), with its id.
    Configured {
        /// Key id written into sealed values.
        id: String,
        /// Base64 of the 32-byte key.
        key: Secret,
    },
    /// A key ring: every key opens, the active one seals.
    Ring {
        /// The id new values are sealed under.
        active: String,
        /// Every key by id (base64 of 32 bytes each).
        keys: Vec<(String, Secret)>,
    },
    /// Embedded default: read or create this key file (mode 0600).
    File {
        /// Key id written into sealed values.
        id: String,
        /// The key file beside the SQLite database.
        path: PathBuf,
    },
}

/// A calling service.
pub struct CallerSetting {
    /// The caller's name; connections belong to it.
    pub name: String,
    /// SHA-256 of each bearer token it may present (the tokens themselves
    /// are not kept).
    pub token_sha256s: Vec<[u8; 32]>,
    /// SPIFFE IDs (URI SANs of a verified client certificate) that are it.
    pub spiffe_ids: Vec<String>,
    /// DNS names (SANs of a verified client certificate) that are it.
    pub dns_names: Vec<String>,
    /// Calls per second it may make on each replica, with a burst; `None`
    /// for no limit.
    pub rate_limit: Option<(f64, u32)>,
    /// What it may do.
    pub policy: crate::domain::Policy,
}

impl std::fmt::Debug for CallerSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerSetting")
            .field("name", &self.name)
            .field("tokens", &self.token_sha256s.len())
            .field("spiffe_ids", &self.spiffe_ids)
            .field("dns_names", &self.dns_names)
            .field("rate_limit", &self.rate_limit)
            .field("policy", &self.policy)
            .finish()
    }
}

/// Outbound HTTP limits.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Largest provider response body read.
    pub max_response_bytes: usize,
}

impl Settings {
    /// Loads settings from an optional TOML file and the given environment.
    pub fn load(
        path: Option<&std::path::Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Settings, String> {
        for name in env.keys() {
            if name.starts_with("AUTHBROKER_") && !env::KNOWN.contains(&name.as_str()) {
                return Err(format!("unknown environment variable {name}"));
            }
        }
        let raw = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                Self::parse_toml(&text)
                    .map_err(|e| format!("config file {}: {e}", path.display()))?
            }
            None => RawConfig::default(),
        };
        Self::resolve(raw, env)
    }

    /// Parses TOML text alone (used by `check-config` and tests).
    pub fn parse_toml(text: &str) -> Result<RawConfig, String> {
        toml::from_str(text).map_err(|e| toml_error::describe(text, &e))
    }

    fn resolve(raw: RawConfig, env: &BTreeMap<String, String>) -> Result<Settings, String> {
        let get = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();

        let listen_text = get(env::LISTEN)
            .or(raw.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            format!("listen: {listen_text:?} is not an address like 127.0.0.1:50051")
        })?;

        let health_listen = match raw.health_listen.filter(|h| !h.is_empty()) {
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                format!("health_listen: {text:?} is not an address like 0.0.0.0:8081")
            })?),
            None => None,
        };
        if health_listen.is_some_and(|h| h.port() == listen.port() && h.port() != 0) {
            return Err("health_listen: must differ from listen".into());
        }
        let metrics_listen = match raw.metrics_listen.filter(|m| !m.is_empty()) {
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                format!("metrics_listen: {text:?} is not an address like 0.0.0.0:9464")
            })?),
            None => None,
        };
        let port_of = |a: Option<SocketAddr>| a.map(|a| a.port()).filter(|p| *p != 0);
        if port_of(metrics_listen).is_some()
            && (port_of(metrics_listen) == port_of(Some(listen))
                || port_of(metrics_listen) == port_of(health_listen))
        {
            return Err("metrics_listen: must differ from listen and health_listen".into());
        }
        let tls = raw.tls.map(tls::RawTls::resolve).transpose()?;

        let database_url = get(env::DATABASE)
            .or_else(|| get(env::DATABASE_URL))
            .or(raw.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(
                "database_url: must start with sqlite:, postgres:// or postgresql://".into(),
            );
        }

        let migrate_on_start = match get(env::MIGRATE_ON_START) {
            Some(v) => parse_bool(env::MIGRATE_ON_START, &v)?,
            None => raw.migrate_on_start.unwrap_or(true),
        };
        let state_ttl_secs = match get(env::STATE_TTL_SECS) {
            Some(v) => v
                .parse()
                .map_err(|_| format!("{}: not a number of seconds", env::STATE_TTL_SECS))?,
            None => raw.state_ttl_secs.unwrap_or(600),
        };
        if !(1..=86_400).contains(&state_ttl_secs) {
            return Err("state_ttl_secs: must be between 1 and 86400".into());
        }
        let log_format = match get(env::LOG_FORMAT).as_deref() {
            Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(format!(
                    "{}: {other:?} is not text or json",
                    env::LOG_FORMAT
                ));
            }
            None => raw.log_format.unwrap_or_default(),
        };

        let key_id = get(env::ENCRYPTION_KEY_ID)
            .or(raw.encryption_key_id)
            .unwrap_or_else(|| "k1".into());
        if let Some(path) = &raw.encryption_key_file {
            keys::refuse_world_readable("encryption_key_file", std::path::Path::new(path))?;
        }
        let ring = keys::ring(raw.encryption_keys, raw.active_encryption_key_id, env)?;
        let configured_key = match get(env::ENCRYPTION_KEY) {
            Some(key) => Some(Secret::new(key)),
            None => resolve_secret(
                "encryption_key",
                raw.encryption_key,
                raw.encryption_key_env,
                raw.encryption_key_file,
                env,
            )?,
        };
        let key = match (configured_key, ring) {
            (Some(_), Some(_)) => {
                return Err(
                    "encryption_key: give either encryption_key (a ring of one) or [[encryption_keys]], not both"
                        .into(),
                );
            }
            (None, Some(ring)) => ring,
            (Some(key), None) => KeySetting::Configured { id: key_id, key },
            (None, None) => match embedded_sqlite_path(&database_url) {
                Some(db) => KeySetting::File {
                    id: key_id,
                    path: db.with_extension("key"),
                },
                None => {
                    return Err(
                        "encryption_key: required for any database but the embedded SQLite file \
                         (set encryption_key, encryption_key_env, encryption_key_file or AUTHBROKER_ENCRYPTION_KEY; \
                         every replica must share it)"
                            .into(),
                    );
                }
            },
        };

        let mut providers = BTreeMap::new();
        for (id, provider) in raw.providers {
            let setting =
                resolve_provider(&id, provider, env).map_err(|e| format!("providers.{id}.{e}"))?;
            providers.insert(id, setting);
        }
        let mtls = tls.as_ref().is_some_and(|t| t.client_ca_file.is_some());
        let callers = callers::resolve(raw.callers, &providers, env, mtls)?;

        let http = HttpSettings {
            connect_timeout: Duration::from_millis(raw.http.connect_timeout_ms.unwrap_or(5_000)),
            timeout: Duration::from_millis(raw.http.timeout_ms.unwrap_or(15_000)),
            max_response_bytes: raw.http.max_response_bytes.unwrap_or(1 << 20),
        };
        if http.connect_timeout.is_zero()
            || http.timeout.is_zero()
            || http.max_response_bytes < 1024
        {
            return Err(
                "http: timeouts must be positive and max_response_bytes at least 1024".into(),
            );
        }

        let tokens = TokenSettings {
            refresh_window: Duration::from_secs(raw.refresh_window_secs.unwrap_or(300)),
            refresh_interval: match raw.refresh_interval_secs.unwrap_or(1) {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
            max_wait: Duration::from_secs(raw.max_wait_secs.unwrap_or(10)),
            refresh_lease: Duration::from_secs(raw.refresh_lease_secs.unwrap_or(10)),
            refresh_cooldown: Duration::from_secs(raw.force_refresh_cooldown_secs.unwrap_or(5)),
            cache_ttl: Duration::from_millis(raw.token_cache_ttl_ms.unwrap_or(2_000)),
            cache_capacity: raw.token_cache_capacity.unwrap_or(100_000),
        };
        if !(1..=300).contains(&tokens.max_wait.as_secs()) {
            return Err("max_wait_secs: must be between 1 and 300".into());
        }
        if tokens.refresh_cooldown > Duration::from_secs(3_600) {
            return Err("force_refresh_cooldown_secs: at most 3600".into());
        }
        if !(3..=300).contains(&tokens.refresh_lease.as_secs()) {
            return Err("refresh_lease_secs: must be between 3 and 300".into());
        }
        if tokens.cache_ttl > Duration::from_secs(60) {
            return Err("token_cache_ttl_ms: at most 60000 (it bounds how long a revoked token can still be served)".into());
        }
        let server = raw.server.resolve()?;
        if server.request_timeout <= tokens.max_wait + Duration::from_secs(1) {
            return Err(
                "server.request_timeout_secs: must be more than max_wait_secs + 1 (a call waits up to max_wait_secs for a refresh)"
                    .into(),
            );
        }
        let health_check_interval =
            Duration::from_millis(raw.health_check_interval_ms.unwrap_or(2_000).max(100));
        let usage_retention =
            Duration::from_secs(raw.usage_retention_days.unwrap_or(90).max(1) * 86_400);
        let audit_retention =
            Duration::from_secs(raw.audit_retention_days.unwrap_or(365).max(1) * 86_400);

        Ok(Settings {
            listen,
            health_listen,
            metrics_listen,
            tls,
            database_url,
            migrate_on_start,
            state_ttl: Duration::from_secs(state_ttl_secs),
            log_format,
            key,
            callers,
            providers,
            http,
            tokens,
            health_check_interval,
            usage_retention,
            audit_retention,
            shutdown_grace: Duration::from_secs(raw.shutdown_grace_secs.unwrap_or(25)),
            server,
        })
    }
}

/// The file of a local SQLite URL (`sqlite://path` or `sqlite:path`), if it is one.
pub fn embedded_sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn resolve_provider(
    id: &str,
    mut raw: RawProvider,
    env: &BTreeMap<String, String>,
) -> Result<ProviderSetting, String> {
    if !valid_name(id, 64) {
        return Err("<id>: a provider id is 1 to 64 characters of a-z A-Z 0-9 . _ -".into());
    }
    let refresh = refresh_limits(&raw)?;
    let kind = raw
        .kind
        .ok_or("kind: required (ares, aries, askara, arterra, oauth2 or oidc)")?;
    if raw.environment.is_some() && kind != ProviderKind::Arterra {
        return Err("environment: only the arterra kind has sandbox and live environments".into());
    }
    if kind == ProviderKind::Oidc {
        return resolve_oidc(id, raw, env, refresh);
    }
    let mut profile = match Profile::builtin(kind, raw.environment.unwrap_or(Environment::Sandbox))
    {
        Some(profile) => profile,
        None => Profile::rfc6749(
            raw.authorize_url
                .clone()
                .ok_or("authorize_url: required for kind oauth2")?,
            raw.token_url
                .clone()
                .ok_or("token_url: required for kind oauth2")?,
        ),
    };
    raw.apply_knobs(&mut profile);
    if let Some(url) = raw.authorize_url.take() {
        profile.authorize_url = url;
    }
    if let Some(url) = raw.token_url.take() {
        profile.token_url = url;
    }
    if let Some(url) = raw.userinfo_url.take() {
        profile.userinfo_url = Some(url).filter(|u| !u.is_empty());
    }
    if let Some(url) = raw.usage_url.take() {
        profile.usage_url = Some(url).filter(|u| !u.is_empty());
    }
    if let Some(url) = raw.revocation_url.take() {
        profile.revocation_url = Some(url).filter(|u| !u.is_empty());
    }
    for (field, url) in [
        ("authorize_url", Some(&profile.authorize_url)),
        ("token_url", Some(&profile.token_url)),
    ]
    .into_iter()
    .chain([
        ("userinfo_url", profile.userinfo_url.as_ref()),
        ("usage_url", profile.usage_url.as_ref()),
        ("revocation_url", profile.revocation_url.as_ref()),
    ]) {
        if let Some(url) = url {
            check_provider_url(url).map_err(|e| format!("{field}: {e}"))?;
        }
    }
    let issuer = raw.issuer.clone().filter(|i| !i.is_empty());
    if let Some(issuer) = &issuer {
        check_provider_url(issuer).map_err(|e| format!("issuer: {e}"))?;
    }
    let require_iss = raw.require_iss.unwrap_or(false);
    if require_iss && issuer.is_none() {
        return Err("require_iss: needs issuer".into());
    }

    client_setting(id, raw, env, profile, refresh, issuer, require_iss, None)
}

/// `kind = "oidc"`: the issuer, and the knobs config may pin; endpoints
/// stay empty until discovery fills them (`ProviderSetting::discovered`).
fn resolve_oidc(
    id: &str,
    raw: RawProvider,
    env: &BTreeMap<String, String>,
    refresh: RefreshLimits,
) -> Result<ProviderSetting, String> {
    let issuer = raw
        .issuer
        .clone()
        .filter(|i| !i.is_empty())
        .ok_or("issuer: required for kind oidc (its discovery document gives the endpoints)")?;
    check_provider_url(&issuer).map_err(|e| format!("issuer: {e}"))?;
    let url = |field: &str, value: &Option<String>| -> Result<Option<String>, String> {
        match value.as_deref().filter(|u| !u.is_empty()) {
            Some(u) => {
                check_provider_url(u).map_err(|e| format!("{field}: {e}"))?;
                Ok(Some(u.to_owned()))
            }
            None => Ok(None),
        }
    };
    let overrides = crate::oidc::Overrides {
        authorize_url: url("authorize_url", &raw.authorize_url)?,
        token_url: url("token_url", &raw.token_url)?,
        userinfo_url: url("userinfo_url", &raw.userinfo_url)?,
        revocation_url: url("revocation_url", &raw.revocation_url)?,
        client_auth: raw.client_auth(),
        require_iss: raw.require_iss,
    };
    if raw.usage_url.is_some() {
        return Err("usage_url: not for kind oidc (OpenID Connect has no usage endpoint)".into());
    }
    let mut profile = Profile::rfc6749(String::new(), String::new());
    profile.default_scopes = vec!["openid".into()];
    raw.apply_knobs(&mut profile);
    let oidc = crate::oidc::Oidc::new(issuer.clone(), overrides);
    let require_iss = raw.require_iss.unwrap_or(false);
    client_setting(
        id,
        raw,
        env,
        profile,
        refresh,
        Some(issuer),
        require_iss,
        Some(std::sync::Arc::new(oidc)),
    )
}

/// The client half of a provider: credentials, redirect URIs, grants.
#[allow(clippy::too_many_arguments)]
fn client_setting(
    id: &str,
    raw: RawProvider,
    env: &BTreeMap<String, String>,
    profile: Profile,
    refresh: RefreshLimits,
    issuer: Option<String>,
    require_iss: bool,
    oidc: Option<std::sync::Arc<crate::oidc::Oidc>>,
) -> Result<ProviderSetting, String> {
    let client_id = raw
        .client_id
        .filter(|c| !c.is_empty())
        .ok_or("client_id: required")?;
    let client_secret = resolve_secret(
        "client_secret",
        raw.client_secret,
        raw.client_secret_env,
        raw.client_secret_file,
        env,
    )?
    .ok_or(
        "client_secret: one of client_secret, client_secret_env or client_secret_file is required",
    )?;
    if raw.redirect_uris.is_empty() {
        return Err("redirect_uris: at least one is required".into());
    }
    for uri in &raw.redirect_uris {
        check_http_url(uri).map_err(|e| format!("redirect_uris: {uri:?}: {e}"))?;
    }
    let allow_password_grant = raw.allow_password_grant.unwrap_or(false);
    if allow_password_grant && !profile.password_grant {
        return Err("allow_password_grant: this provider has no password grant".into());
    }
    Ok(ProviderSetting {
        id: ProviderId::trusted(id),
        profile,
        client_id,
        client_secret: ClientSecret::new(client_secret.expose()),
        redirect_uris: raw
            .redirect_uris
            .into_iter()
            .map(RedirectUri::trusted)
            .collect(),
        allow_password_grant,
        refresh,
        issuer,
        require_iss,
        oidc,
    })
}

/// `refresh_concurrency`, `refresh_rate_per_sec`, `refresh_token_max_idle_secs`.
fn refresh_limits(raw: &RawProvider) -> Result<RefreshLimits, String> {
    let defaults = RefreshLimits::default();
    let concurrency = raw.refresh_concurrency.unwrap_or(defaults.concurrency);
    if !(1..=1024).contains(&concurrency) {
        return Err("refresh_concurrency: must be between 1 and 1024".into());
    }
    let rate_per_sec = raw.refresh_rate_per_sec;
    if rate_per_sec.is_some_and(|r| !(0.01..=100_000.0).contains(&r)) {
        return Err("refresh_rate_per_sec: must be between 0.01 and 100000".into());
    }
    let max_idle_secs = raw.refresh_token_max_idle_secs;
    if max_idle_secs.is_some_and(|s| !(60..=366 * 86_400).contains(&s)) {
        return Err(
            "refresh_token_max_idle_secs: must be between 60 and 31622400 (366 days)".into(),
        );
    }
    Ok(RefreshLimits {
        concurrency,
        rate_per_sec,
        max_idle_secs: max_idle_secs.map(|s| s as i64),
    })
}

fn check_http_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an absolute http(s) URL".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    Ok(())
}

/// A provider endpoint: https, or http on a loopback host only (a local
/// provider or test double); tokens and secrets never cross a network in
/// clear.
pub(crate) fn check_provider_url(text: &str) -> Result<(), String> {
    check_http_url(text)?;
    let url = url::Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        return Err("must be https (http only on a loopback host)".into());
    }
    Ok(())
}

fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn parse_bool(name: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{name}: {value:?} is not true or false")),
    }
}

#[cfg(test)]
mod tests;
