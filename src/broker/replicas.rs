//! Counting the replicas that share a PostgreSQL database, so each takes its
//! share of a provider's rate limit: every process records a heartbeat and
//! counts those seen within a few beats. On SQLite the process is alone.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use sea_orm::DatabaseConnection;

use crate::{clock::SharedClock, store::replicas};

/// How often a replica records that it is alive.
pub(crate) const BEAT: Duration = Duration::from_secs(2);
/// A replica not seen for this long no longer counts.
const GONE_AFTER_SECS: i64 = 6;

/// Keeps `count` current until the process exits; on SQLite it stays 1.
pub(crate) async fn keep_count(
    db: DatabaseConnection,
    owner: String,
    clock: SharedClock,
    count: Arc<AtomicU64>,
) {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        count.store(1, Ordering::Relaxed);
        return;
    }
    let mut beats = 0u64;
    loop {
        let now = clock.now();
        let counted = async {
            replicas::beat(&db, &owner, now).await?;
            // Now and then, forget replicas gone for an hour.
            if beats.is_multiple_of(1800) {
                replicas::remove(&db, "", now - 3600).await?;
            }
            replicas::live(&db, now - GONE_AFTER_SECS).await
        };
        match counted.await {
            Ok(n) => count.store(n.max(1), Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "counting live replicas failed"),
        }
        beats += 1;
        tokio::time::sleep(BEAT).await;
    }
}

/// Removes this replica at a clean exit, so the others take its share at once.
pub(crate) async fn leave(db: &DatabaseConnection, owner: &str, clock: &SharedClock) {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        let _ = replicas::remove(db, owner, clock.now() - 3600).await;
    }
}
