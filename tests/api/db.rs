//! A database per test: a SQLite file in the test's folder, or a PostgreSQL
//! database created on the local server and dropped when the test ends.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

/// Which database a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Admin URL of the local PostgreSQL (trust auth); `TEST_POSTGRES_URL` overrides.
fn admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Whether the local PostgreSQL accepts connections. When it does not, the
/// PostgreSQL variant of a test is skipped with a line saying so, so that
/// the suite runs on a laptop without it; with `CI` set the test fails
/// instead, so CI can never skip silently.
pub fn postgres_available(test: &str) -> bool {
    let url = admin_url();
    let addr = url
        .split('@')
        .next_back()
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_owned();
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&addr.as_str())
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    if reachable {
        return true;
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{test}: no PostgreSQL at {addr} and CI is set: PostgreSQL tests must run in CI");
    }
    eprintln!(
        "SKIPPED {test}: no PostgreSQL at {addr} (set TEST_POSTGRES_URL, or CI=1 to fail instead)"
    );
    false
}

/// One test's database.
pub struct TestDb {
    pub backend: Backend,
    /// What authbroker is configured with.
    pub url: String,
    /// The sealing key configured (PostgreSQL requires one; replicas share it).
    pub key: Option<String>,
    pg_name: Option<String>,
}

impl TestDb {
    /// Creates the database. `dir` holds the SQLite file.
    pub async fn create(backend: Backend, dir: &std::path::Path) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb {
                backend,
                url: format!("sqlite://{}/authbroker.db", dir.display()),
                key: None,
                pg_name: None,
            },
            Backend::Postgres => {
                let name = format!("authbroker_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(admin_url())
                    .await
                    .expect("connect to the local PostgreSQL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                let _ = admin.close().await;
                let base = admin_url();
                let server = base
                    .rsplit_once('/')
                    .map(|(server, _)| server)
                    .unwrap_or(&base);
                TestDb {
                    backend,
                    url: format!("{server}/{name}"),
                    key: Some(authbroker::crypto::SealingKey::generate_base64()),
                    pg_name: Some(name),
                }
            }
        }
    }

    /// Runs one SQL statement against the test database (to stage states a
    /// test cannot reach through the API, like a lease held by a dead process).
    pub async fn execute(&self, sql: &str) {
        let db = Database::connect(&self.url).await.expect("connect");
        db.execute_unprepared(sql).await.expect("execute");
        let _ = db.close().await;
    }

    /// The first column of the one row `sql` returns, as a number.
    pub async fn count(&self, sql: &str) -> i64 {
        let db = Database::connect(&self.url).await.expect("connect");
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .expect("query")
            .expect("one row");
        let n = row.try_get_by_index::<i64>(0).expect("a number");
        let _ = db.close().await;
        n
    }

    /// Every row of every table as text, for secret-leak checks on PostgreSQL.
    pub async fn dump(&self) -> String {
        let db: DatabaseConnection = Database::connect(&self.url).await.expect("connect");
        let mut out = String::new();
        for table in ["connections", "auth_states", "usage_ledger", "audit_events"] {
            let rows = db
                .query_all_raw(Statement::from_string(
                    db.get_database_backend(),
                    format!("SELECT t::text AS row FROM {table} t"),
                ))
                .await
                .expect("dump");
            for row in rows {
                out.push_str(&row.try_get::<String>("", "row").expect("text"));
                out.push('\n');
            }
        }
        let _ = db.close().await;
        out
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside any async context: use a private runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(admin) = Database::connect(admin_url()).await {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(10),
                        admin.execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        )),
                    )
                    .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}
