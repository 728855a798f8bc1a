//! Spawns the real `authbroker` binary on port 0 with its own SQLite database
//! and the four strict fake providers, and gives tests a tonic client.

use std::{
    collections::BTreeMap,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use authbroker::pb::{self, auth_broker_client::AuthBrokerClient, complete_auth_response::Outcome};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use tonic::{
    Request, Status,
    metadata::{AsciiMetadataValue, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

pub use crate::db::Backend;
use crate::{
    db::TestDb,
    fake::{FakeProvider, Kind},
};

/// Redirect URI registered at every fake and in authbroker's config.
pub const CALLBACK: &str = "https://app.example.com/oauth/callback";
/// A second redirect URI registered for ARES only.
pub const OTHER_CALLBACK: &str = "https://app.example.com/oauth/other";
/// Caller tokens.
pub const BILLING_TOKEN: &str = "billing-token-0123456789abcdef";
pub const SEARCH_TOKEN: &str = "search-token-0123456789abcdef";
/// The end user's account at every fake.
pub const USER: &str = "user-42";
pub const EMAIL: &str = "user-42@example.test";
pub const PASSWORD: &str = "correct horse battery";
pub const CREDITS: i64 = 100;

/// Builds extra provider sections from the running fakes.
pub type ExtraProviders = Arc<dyn Fn(&Fakes) -> String + Send + Sync>;

/// Knobs of one spawned server.
#[derive(Clone)]
pub struct Options {
    /// Extra top-level TOML appended to the generated config.
    pub extra_config: String,
    /// Outbound HTTP timeout in milliseconds.
    pub http_timeout_ms: u64,
    /// Whether to configure callers (otherwise unauthenticated loopback mode).
    pub callers: bool,
    /// Extra environment variables for the process (e.g. OTEL_*).
    pub env: Vec<(String, String)>,
    /// Reach PostgreSQL through this local port (a test-controlled proxy).
    pub database_port: Option<u16>,
    /// TOML appended after the generated provider sections, built from the fakes.
    pub extra_providers: Option<ExtraProviders>,
    /// `force_refresh_cooldown_secs`: 0 by default here, so tests may force
    /// refreshes back to back; the cooldown has tests of its own.
    pub refresh_cooldown_secs: u64,
    /// `refresh_interval_secs`: 0 (no background refresher) by default here,
    /// so the background refresher never adds to the provider calls a test
    /// counts; its own tests turn it on.
    pub background_refresh_secs: u64,
    /// TOML added to one generated provider section, by provider id.
    pub provider_config: Vec<(&'static str, String)>,
    /// The process's limit on open files (run under `prlimit`).
    pub open_files: Option<u64>,
    /// TOML added to one caller's section, by caller name.
    pub caller_config: Vec<(&'static str, String)>,
    /// The key settings instead of the database's own key (TOML, top level).
    pub keys: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            extra_config: String::new(),
            http_timeout_ms: 3_000,
            callers: true,
            extra_providers: None,
            database_port: None,
            env: Vec::new(),
            refresh_cooldown_secs: 0,
            background_refresh_secs: 0,
            provider_config: Vec::new(),
            open_files: None,
            caller_config: Vec::new(),
            keys: None,
        }
    }
}

/// The fakes, by provider id as configured in authbroker.
pub struct Fakes {
    pub ares: FakeProvider,
    pub aries: FakeProvider,
    pub askara: FakeProvider,
    pub arterra: FakeProvider,
}

impl Fakes {
    /// The four fakes, each with the test user.
    pub async fn start() -> Self {
        let ares = FakeProvider::start(Kind::Ares, &[CALLBACK, OTHER_CALLBACK]).await;
        let aries = FakeProvider::start(Kind::Aries, &[CALLBACK]).await;
        let askara = FakeProvider::start(Kind::Askara, &[CALLBACK]).await;
        let arterra = FakeProvider::start(Kind::Arterra, &[CALLBACK]).await;
        for fake in [&ares, &aries, &askara, &arterra] {
            fake.add_user(USER, EMAIL, PASSWORD, CREDITS);
        }
        Self {
            ares,
            aries,
            askara,
            arterra,
        }
    }

    /// The fake behind a configured provider id.
    pub fn get(&self, provider: &str) -> &FakeProvider {
        match provider {
            "ares" => &self.ares,
            "aries" => &self.aries,
            "askara" => &self.askara,
            "arterra" => &self.arterra,
            other => panic!("no fake for {other}"),
        }
    }

    /// Every secret the fakes handed out or hold, for leak checks.
    pub fn all_secrets(&self) -> Vec<String> {
        let mut secrets = Vec::new();
        for fake in [&self.ares, &self.aries, &self.askara, &self.arterra] {
            secrets.push(fake.client_secret());
            for request in fake.requests() {
                for value in json_or_form_values(&request.body) {
                    if value.len() >= 16
                        && value
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
                    {
                        secrets.push(value);
                    }
                }
            }
            secrets.extend(fake.last_access_token());
            secrets.extend(fake.last_refresh_token());
        }
        secrets.push(PASSWORD.to_owned());
        secrets.push(BILLING_TOKEN.to_owned());
        secrets.push(SEARCH_TOKEN.to_owned());
        secrets
    }
}

fn json_or_form_values(body: &str) -> Vec<String> {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(body) {
        return map
            .values()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
    }
    url::form_urlencoded::parse(body.as_bytes())
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// A running authbroker process.
pub struct TestApp {
    pub addr: String,
    pub fakes: Arc<Fakes>,
    pub dir: Arc<tempfile::TempDir>,
    pub db: Arc<TestDb>,
    pub options: Options,
    child: Option<Child>,
    logs: Arc<Mutex<Vec<String>>>,
}

impl TestApp {
    /// Starts the fakes and the server on `backend` with default options.
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, Options::default()).await
    }

    /// Starts the fakes and the server on `backend`.
    pub async fn spawn_with(backend: Backend, options: Options) -> TestApp {
        let fakes = Arc::new(Fakes::start().await);
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let db = Arc::new(TestDb::create(backend, dir.path()).await);
        Self::start(fakes, dir, db, options).await
    }

    /// Another server process on the same database, key and fakes: a replica.
    pub async fn replica(&self) -> TestApp {
        Self::start(
            self.fakes.clone(),
            self.dir.clone(),
            self.db.clone(),
            self.options.clone(),
        )
        .await
    }

    async fn start(
        fakes: Arc<Fakes>,
        dir: Arc<tempfile::TempDir>,
        db: Arc<TestDb>,
        options: Options,
    ) -> TestApp {
        let config = config_toml(&fakes, &db, &options);
        let config_path = dir.path().join("authbroker.toml");
        std::fs::write(&config_path, config).expect("write config");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (child, addr) = launch(&config_path, &options, logs.clone()).await;
        TestApp {
            addr,
            fakes,
            dir,
            db,
            options,
            child: Some(child),
            logs,
        }
    }

    /// SIGKILL: the process dies mid-whatever, as in a node failure.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill");
        }
    }

    /// Stops the process gracefully (SIGTERM) and starts it again on the same
    /// database and key.
    pub async fn restart(self) -> TestApp {
        let options = self.options.clone();
        self.restart_with(options).await
    }

    /// Like `restart`, with other options: as an operator changing the
    /// config (e.g. removing a provider) between two runs.
    pub async fn restart_with(mut self, options: Options) -> TestApp {
        self.stop().await;
        let logs = self.logs.lock().expect("logs").clone();
        let next = Self::start(
            self.fakes.clone(),
            self.dir.clone(),
            self.db.clone(),
            options,
        )
        .await;
        next.logs.lock().expect("logs").splice(0..0, logs);
        next
    }

    /// Sends SIGTERM without waiting.
    pub fn terminate(&self) {
        let pid = self.child.as_ref().and_then(Child::id).expect("running");
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        tokio::time::timeout(within, child.wait())
            .await
            .expect("exits in time")
            .expect("wait")
    }

    /// SIGTERM, then wait for exit.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status();
            }
            let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .expect("server exits after SIGTERM")
                .expect("wait");
            assert!(status.success(), "server exited with {status}");
        }
    }

    /// A client authenticated as the billing service.
    pub async fn billing(&self) -> Client {
        self.client(Some(BILLING_TOKEN)).await
    }

    /// A client authenticated as the search service.
    pub async fn search(&self) -> Client {
        self.client(Some(SEARCH_TOKEN)).await
    }

    /// A client sending `token` (or nothing).
    pub async fn client(&self, token: Option<&str>) -> Client {
        client_at(&self.addr, token).await
    }

    /// Every log line so far (JSON, one per line).
    pub fn logs(&self) -> String {
        self.logs.lock().expect("logs").join("\n")
    }

    /// Makes the stored access token of `id` expired, as if time had passed.
    pub async fn expire(&self, id: &str) {
        self.db
            .execute(&format!(
                "UPDATE connections SET access_token_expires_at = 0 WHERE id = '{id}'"
            ))
            .await;
    }

    /// Everything the database holds, as text: the SQLite file and its WAL
    /// as raw bytes, or every PostgreSQL row.
    pub async fn database_contents(&self) -> String {
        match self.db.backend {
            Backend::Sqlite => {
                let mut bytes = Vec::new();
                for name in ["authbroker.db", "authbroker.db-wal", "authbroker.db-shm"] {
                    if let Ok(b) = std::fs::read(self.dir.path().join(name)) {
                        bytes.extend(b);
                    }
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Backend::Postgres => self.db.dump().await,
        }
    }
}

/// A client of the server at `addr` sending `token` (or nothing).
pub async fn client_at(addr: &str, token: Option<&str>) -> Client {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect to authbroker");
    let bearer = token.map(|t| MetadataValue::try_from(format!("Bearer {t}")).expect("ascii"));
    AuthBrokerClient::with_interceptor(channel, Bearer(bearer))
}

/// The server's config for these fakes, database and options.
pub fn config_toml(fakes: &Fakes, db: &TestDb, options: &Options) -> String {
    let key = match &options.keys {
        Some(keys) => format!("{keys}\n"),
        None => db
            .key
            .as_ref()
            .map(|k| format!("encryption_key = \"{k}\"\n"))
            .unwrap_or_default(),
    };
    let mut toml = format!(
        "listen = \"127.0.0.1:0\"\ndatabase_url = \"{}\"\nlog_format = \"json\"\n{key}\
         force_refresh_cooldown_secs = {}\nrefresh_interval_secs = {}\n{}\n\
         [http]\nconnect_timeout_ms = 1000\ntimeout_ms = {}\n",
        match options.database_port {
            Some(port) => db.url.replace(":5432/", &format!(":{port}/")),
            None => db.url.clone(),
        },
        options.refresh_cooldown_secs,
        options.background_refresh_secs,
        options.extra_config,
        options.http_timeout_ms,
    );
    if options.callers {
        for (name, token) in [("billing", BILLING_TOKEN), ("search", SEARCH_TOKEN)] {
            toml += &format!("[[callers]]\nname = \"{name}\"\ntoken = \"{token}\"\n");
            for (_, extra) in options.caller_config.iter().filter(|(c, _)| *c == name) {
                toml += &format!("{extra}\n");
            }
        }
    }
    for (id, fake, extra) in [
        (
            "ares",
            &fakes.ares,
            format!("redirect_uris = [\"{CALLBACK}\", \"{OTHER_CALLBACK}\"]"),
        ),
        (
            "aries",
            &fakes.aries,
            format!("redirect_uris = [\"{CALLBACK}\"]"),
        ),
        (
            "askara",
            &fakes.askara,
            format!("redirect_uris = [\"{CALLBACK}\"]"),
        ),
        (
            "arterra",
            &fakes.arterra,
            format!(
                "redirect_uris = [\"{CALLBACK}\"]\nallow_password_grant = true\nenvironment = \"sandbox\""
            ),
        ),
    ] {
        toml += &format!(
            "[providers.{id}]\nkind = \"{id}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n{extra}\n\
             authorize_url = \"{}\"\ntoken_url = \"{}\"\n",
            fake.client_id(),
            fake.client_secret(),
            fake.authorize_url(),
            fake.token_url(),
        );
        if let Some(url) = fake.userinfo_url() {
            toml += &format!("userinfo_url = \"{url}\"\n");
        }
        if let Some(url) = fake.usage_url() {
            toml += &format!("usage_url = \"{url}\"\n");
        }
        for (_, extra) in options.provider_config.iter().filter(|(p, _)| *p == id) {
            toml += &format!("{extra}\n");
        }
    }
    toml + &options
        .extra_providers
        .as_ref()
        .map(|f| f(fakes))
        .unwrap_or_default()
}

/// Starts the binary and waits for its "listening" log line.
async fn launch(
    config: &std::path::Path,
    options: &Options,
    logs: Arc<Mutex<Vec<String>>>,
) -> (Child, String) {
    let binary = env!("CARGO_BIN_EXE_authbroker");
    let mut command = match options.open_files {
        Some(n) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}")).arg("--").arg(binary);
            c
        }
        None => Command::new(binary),
    };
    let mut child = command
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // Debug level, so the secret-leak checks cover the most verbose logs.
        .env(
            "AUTHBROKER_LOG",
            "debug,h2=warn,hyper=warn,hyper_util=warn,tower=warn,sqlx=warn,rustls=warn,tonic=warn",
        )
        .envs(options.env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn authbroker");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("authbroker listening")
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let (Some(tx), Some(addr)) = (tx.take(), v["addr"].as_str())
            {
                let _ = tx.send(addr.to_owned());
            }
            logs.lock().expect("logs").push(line);
        }
    });
    let addr = match tokio::time::timeout(Duration::from_secs(30), rx).await {
        Ok(Ok(addr)) => addr,
        _ => {
            let status = child.try_wait().ok().flatten();
            panic!("authbroker did not start (exit: {status:?})");
        }
    };
    (child, addr)
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The tonic client tests use.
pub type Client = AuthBrokerClient<InterceptedService<Channel, Bearer>>;

/// BeginAuth for the default redirect URI.
pub async fn begin(client: &mut Client, provider: &str, subject: &str) -> pb::BeginAuthResponse {
    client
        .begin_auth(pb::BeginAuthRequest {
            provider: provider.into(),
            subject: subject.into(),
            redirect_uri: CALLBACK.into(),
            ..Default::default()
        })
        .await
        .expect("BeginAuth")
        .into_inner()
}

/// Turns the callback's query parameters into a CompleteAuth request.
pub fn callback(mut params: BTreeMap<String, String>) -> pb::CompleteAuthRequest {
    pb::CompleteAuthRequest {
        state: params.remove("state").unwrap_or_default(),
        code: params.remove("code").unwrap_or_default(),
        error: params.remove("error").unwrap_or_default(),
        error_description: params.remove("error_description").unwrap_or_default(),
        params: params.into_iter().collect(),
    }
}

/// CompleteAuth, expecting a stored connection.
pub async fn complete(client: &mut Client, params: BTreeMap<String, String>) -> pb::Connection {
    let outcome = client
        .complete_auth(callback(params))
        .await
        .expect("CompleteAuth")
        .into_inner()
        .outcome;
    match outcome {
        Some(Outcome::Connection(c)) => c,
        other => panic!("expected a connection, got {other:?}"),
    }
}

/// The whole flow for the default redirect URI: begin, the user approves
/// at the fake, complete.
pub async fn connect(
    app: &TestApp,
    client: &mut Client,
    provider: &str,
    subject: &str,
) -> pb::Connection {
    let request = pb::BeginAuthRequest {
        provider: provider.into(),
        subject: subject.into(),
        redirect_uri: CALLBACK.into(),
        ..Default::default()
    };
    connect_via(client, app.fakes.get(provider), request, USER).await
}

/// The whole flow for any BeginAuth request: begin, `user` approves at
/// `fake`, complete, expecting a stored connection.
pub async fn connect_via(
    client: &mut Client,
    fake: &FakeProvider,
    request: pb::BeginAuthRequest,
    user: &str,
) -> pb::Connection {
    let begun = client
        .begin_auth(request)
        .await
        .expect("BeginAuth")
        .into_inner();
    let params = fake.approve(&begun.authorization_url, user).await;
    complete(client, params).await
}

/// GetAccessToken with a minimum validity.
pub async fn token(
    client: &mut Client,
    id: &str,
    min_valid_seconds: u32,
) -> Result<pb::GetAccessTokenResponse, Status> {
    client
        .get_access_token(pb::GetAccessTokenRequest {
            connection_id: id.into(),
            min_valid_seconds,
            force_refresh: false,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// GetAccessToken with `force_refresh`.
pub async fn force_refresh(
    client: &mut Client,
    id: &str,
) -> Result<pb::GetAccessTokenResponse, Status> {
    client
        .get_access_token(pb::GetAccessTokenRequest {
            connection_id: id.into(),
            force_refresh: true,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// GetConnection, expecting the connection.
pub async fn fetch(client: &mut Client, id: &str) -> pb::Connection {
    client
        .get_connection(pb::GetConnectionRequest {
            connection_id: id.into(),
        })
        .await
        .expect("GetConnection")
        .into_inner()
        .connection
        .expect("connection")
}

/// Asserts a status code and that the message mentions `needle`.
#[track_caller]
pub fn assert_status<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: tonic::Code,
    needle: &str,
) {
    match result {
        Ok(v) => panic!("expected {code:?}, got Ok({v:?})"),
        Err(s) => {
            assert_eq!(s.code(), code, "message: {}", s.message());
            assert!(
                s.message().contains(needle),
                "{:?} does not mention {needle:?}",
                s.message()
            );
        }
    }
}

/// A RecordUsage of `credits` for the "test-button" usage under `key`.
pub fn usage(id: &str, key: &str, credits: f64) -> pb::RecordUsageRequest {
    pb::RecordUsageRequest {
        connection_id: id.into(),
        usage: "test-button".into(),
        credits,
        idempotency_key: key.into(),
    }
}

/// RevokeConnection, expecting it done.
pub async fn revoke(client: &mut Client, id: &str) -> pb::RevokeConnectionResponse {
    client
        .revoke_connection(pb::RevokeConnectionRequest {
            connection_id: id.into(),
        })
        .await
        .expect("revoked")
        .into_inner()
}

/// GetUserInfo, expecting the provider's profile.
pub async fn user_info(client: &mut Client, id: &str) -> pb::GetUserInfoResponse {
    client
        .get_user_info(pb::GetUserInfoRequest {
            connection_id: id.into(),
        })
        .await
        .expect("GetUserInfo")
        .into_inner()
}
