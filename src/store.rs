//! The database: sea-orm entities and the repository functions that are the
//! only code touching it: rows become domain values here and nowhere else.
//! Instants are Unix seconds; secrets arrive sealed.

pub(crate) mod audit;
pub(crate) mod budget;
pub(crate) mod connections;
mod entity;
pub(crate) mod keys;
pub(crate) mod liveness;
pub(crate) mod replicas;
pub(crate) mod schedule;
pub(crate) mod states;
pub(crate) mod usage;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::config::embedded_sqlite_path;

/// A PostgreSQL advisory lock key for `name` in `namespace`: FNV-1a, fixed
/// here so that every version of the service computes the same key.
pub(crate) fn advisory_key(namespace: &str, name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in namespace.bytes().chain(name.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// Opens the database, creating the embedded SQLite file (and its folder) when
/// needed.
pub(crate) async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut url = url.to_owned();
    if let Some(path) = embedded_sqlite_path(&url) {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                anyhow::anyhow!("cannot create database folder {}: {e}", dir.display())
            })?;
        }
        if !url.contains("mode=") {
            url.push_str(if url.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            });
        }
    }
    let mut options = ConnectOptions::new(url);
    options
        // 16 on both: SQLite reads scale with connections (one worker thread
        // each; 16 measured best for cache misses on 2 cores), writes are
        // queued by `write_gate` anyway.
        .max_connections(16)
        .connect_timeout(std::time::Duration::from_secs(5))
        .acquire_timeout(std::time::Duration::from_secs(5))
        // Ping a pooled connection only when it sat idle for a second: a ping
        // on every checkout is a second round trip per query (on SQLite a
        // second hand-off to its worker thread), while a connection a
        // failover or proxy killed has always been idle that long.
        .test_before_acquire_if_idle_for(std::time::Duration::from_secs(1))
        .sqlx_logging(false);
    let db = Database::connect(options).await?;
    if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        // WAL lets readers proceed during a write; busy_timeout makes concurrent
        // writers wait instead of failing with SQLITE_BUSY.
        use sea_orm::ConnectionTrait;
        db.execute_unprepared(
            "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000; PRAGMA synchronous=NORMAL;",
        )
        .await?;
    }
    Ok(db)
}

/// In-process queue for SQLite writes. SQLite admits one writer at a time and
/// makes the others sleep in its busy handler (1, 2, 5, 10 … ms), which turns
/// a burst of writes into tens of milliseconds of tail latency; queueing them
/// here hands the lock over without sleeping. PostgreSQL needs no gate.
static SQLITE_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Held across one write statement on SQLite; `None` elsewhere.
pub(crate) async fn write_gate(
    db: &DatabaseConnection,
) -> Option<tokio::sync::MutexGuard<'static, ()>> {
    match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => Some(SQLITE_WRITES.lock().await),
        _ => None,
    }
}
