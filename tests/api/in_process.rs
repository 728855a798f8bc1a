//! The real server in this test process, on a clock the test moves: for
//! tests that would otherwise sleep until a token or a state expires. Tests
//! about processes (SIGKILL, SIGTERM, replicas) keep using the binary.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use authbroker::{app, clock::TestClock, config::Settings};

use crate::{
    db::{Backend, TestDb},
    helpers::{BILLING_TOKEN, Client, Fakes, Options, client_at, config_toml},
};

/// A server running as a task of the test's runtime.
pub struct InProcessApp {
    pub addr: String,
    pub fakes: Arc<Fakes>,
    /// The server's clock: `advance` it instead of sleeping.
    pub clock: Arc<TestClock>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    // Dropped last: the database outlives the server.
    _db: TestDb,
    _dir: tempfile::TempDir,
}

impl InProcessApp {
    /// Starts the fakes and the server on `backend`.
    pub async fn spawn(backend: Backend, options: Options) -> InProcessApp {
        let fakes = Arc::new(Fakes::start().await);
        let dir = tempfile::tempdir().expect("tempdir");
        let db = TestDb::create(backend, dir.path()).await;
        let path = dir.path().join("authbroker.toml");
        std::fs::write(&path, config_toml(&fakes, &db, &options)).expect("write config");
        let settings = Settings::load(Some(&path), &BTreeMap::new()).expect("valid config");
        let clock = TestClock::new();
        let (bound, addr) = tokio::sync::oneshot::channel();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app::serve_with_clock(
            settings,
            clock.clone(),
            Some(bound),
            async move {
                let _ = stop.await;
            },
        ));
        let addr = tokio::time::timeout(Duration::from_secs(30), addr)
            .await
            .expect("server starts in time")
            .expect("server listening");
        InProcessApp {
            addr: addr.to_string(),
            fakes,
            clock,
            shutdown: Some(shutdown),
            server: Some(server),
            _db: db,
            _dir: dir,
        }
    }

    /// The server's database, to stage states a test cannot reach through the API.
    pub fn db(&self) -> &TestDb {
        &self._db
    }

    /// A client authenticated as the billing service.
    pub async fn billing(&self) -> Client {
        client_at(&self.addr, Some(BILLING_TOKEN)).await
    }

    /// Stops the server and waits for it, so the database can be dropped.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let served = tokio::time::timeout(Duration::from_secs(30), server)
                .await
                .expect("server stops in time")
                .expect("server task");
            served.expect("server ran cleanly");
        }
    }
}
