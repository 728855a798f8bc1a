//! authbroker processes for the benchmark: each on loopback port 0 with its
//! own SQLite file or PostgreSQL database, started from the release binary.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use authbroker::pb::auth_broker_client::AuthBrokerClient;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use tonic::{
    Request, Status,
    metadata::AsciiMetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::shared::fake::FakeProvider;

pub const CALLER_TOKEN: &str = "bench-caller-token-0123456789";
pub const CALLBACK: &str = "https://bench.example/callback";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

fn admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// One benchmark database, dropped (PostgreSQL) or deleted (SQLite) at the end.
pub struct BenchDb {
    pub backend: Backend,
    pub url: String,
    pub key: String,
    pg_name: Option<String>,
    _dir: tempfile::TempDir,
}

impl BenchDb {
    pub async fn create(backend: Backend) -> BenchDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = authbroker::crypto::SealingKey::generate_base64();
        match backend {
            Backend::Sqlite => BenchDb {
                backend,
                url: format!("sqlite://{}/bench.db", dir.path().display()),
                key,
                pg_name: None,
                _dir: dir,
            },
            Backend::Postgres => {
                let name = format!("authbroker_bench_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(admin_url())
                    .await
                    .expect("PostgreSQL on 127.0.0.1:5432");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create");
                let _ = admin.close().await;
                let base = admin_url();
                let server = base
                    .rsplit_once('/')
                    .map(|(s, _)| s.to_owned())
                    .unwrap_or(base);
                BenchDb {
                    backend,
                    url: format!("{server}/{name}"),
                    key,
                    pg_name: Some(name),
                    _dir: dir,
                }
            }
        }
    }

    /// A client connection of the benchmark's own (direct reads, bulk inserts).
    pub async fn connect(&self, pool: u32) -> DatabaseConnection {
        let mut options = sea_orm::ConnectOptions::new(&self.url);
        options
            .max_connections(pool)
            .min_connections(pool.min(4))
            .sqlx_logging(false);
        Database::connect(options).await.expect("connect")
    }

    pub async fn drop_database(&mut self) {
        if let Some(name) = self.pg_name.take()
            && let Ok(admin) = Database::connect(admin_url()).await
        {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
            let _ = admin.close().await;
        }
    }
}

/// A running server.
pub struct Server {
    pub addr: String,
    pub started_to_serving: Duration,
    child: Child,
}

impl Server {
    /// Starts the binary and waits until its health check answers SERVING.
    pub async fn start(db: &BenchDb, ares: Option<&FakeProvider>, extra: &str) -> Server {
        Self::start_configured(db, ares, extra, "").await
    }

    /// Like `start`, with `provider_extra` added to the ARES provider section.
    pub async fn start_configured(
        db: &BenchDb,
        ares: Option<&FakeProvider>,
        extra: &str,
        provider_extra: &str,
    ) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        // No background refresher unless `extra` turns it on: it would add
        // provider calls to the scenarios that measure callers' paths.
        let extra = if extra.contains("refresh_interval_secs") {
            extra.to_owned()
        } else {
            format!("refresh_interval_secs = 0\n{extra}")
        };
        let mut config = format!(
            "listen = \"127.0.0.1:0\"\ndatabase_url = \"{}\"\nencryption_key = \"{}\"\nlog_format = \"json\"\n\
             {extra}\n[[callers]]\nname = \"bench\"\ntoken = \"{CALLER_TOKEN}\"\n",
            db.url, db.key
        );
        if let Some(fake) = ares {
            config += &format!(
                "[providers.ares]\nkind = \"ares\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\nredirect_uris = [\"{CALLBACK}\"]\n\
                 authorize_url = \"{}\"\ntoken_url = \"{}\"\nuserinfo_url = \"{}\"\nusage_url = \"{}\"\n{provider_extra}\n",
                fake.client_id(),
                fake.client_secret(),
                fake.authorize_url(),
                fake.token_url(),
                fake.userinfo_url().expect("user endpoint"),
                fake.usage_url().expect("usage endpoint"),
            );
        }
        let path = dir.path().join("bench.toml");
        std::fs::write(&path, config).expect("config");
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_authbroker"))
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .env_clear()
            .env("AUTHBROKER_LOG", "warn,authbroker::app=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn authbroker");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let addr = loop {
            let line = lines
                .next_line()
                .await
                .expect("read")
                .expect("server exited before listening");
            if line.contains("authbroker listening") {
                let v: serde_json::Value = serde_json::from_str(&line).expect("json log");
                break v["addr"].as_str().expect("addr").to_owned();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let mut health = HealthClient::new(channel(&addr).await);
        loop {
            let status = health
                .check(HealthCheckRequest::default())
                .await
                .map(|r| r.into_inner().status());
            if matches!(status, Ok(ServingStatus::Serving)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let started_to_serving = started.elapsed();
        drop(dir);
        Server {
            addr,
            started_to_serving,
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }

    /// Peak resident memory (VmHWM) in KiB, from /proc.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A plain HTTP/2 channel to `addr`.
pub async fn channel(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

/// Adds `authorization: Bearer <caller token>`.
#[derive(Clone)]
pub struct Bearer(AsciiMetadataValue);

impl Bearer {
    /// The benchmark caller's credentials.
    pub fn caller() -> Bearer {
        Bearer(
            format!("Bearer {CALLER_TOKEN}")
                .parse()
                .expect("the caller token is ASCII"),
        )
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// An authbroker client sending the benchmark caller's credentials.
pub type Client = AuthBrokerClient<InterceptedService<Channel, Bearer>>;

/// The machine a run was measured on: CPU, cores, memory, date.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|kib| format!("{:.0} GiB", kib as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    let date = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem}; run on {date}")
}
