//! Process locks on PostgreSQL: each process holds a session advisory lock
//! keyed by its name, on a connection of its own, for as long as it lives;
//! the server releases it when that connection closes. Another process tests
//! the lock without waiting. See `flow::liveness` for what a free lock means.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, Statement,
    sqlx::{self, PgConnection},
};

type DbResult<T> = Result<T, sea_orm::DbErr>;

/// The advisory lock key of the process named `owner` (see
/// [`super::advisory_key`]). Two owners sharing a key (or another
/// application using it) only make a dead holder look alive, which leaves its
/// lease to expire as it would anyway.
pub(crate) fn lock_key(owner: &str) -> i64 {
    super::advisory_key("authbroker-process:", owner)
}

/// Opens a connection outside the pool (so the pool never recycles it) and
/// takes `owner`'s lock on it.
pub(crate) async fn lock(
    db: &DatabaseConnection,
    owner: &str,
) -> Result<PgConnection, sqlx::Error> {
    let mut session = db.get_postgres_connection_pool().acquire().await?.detach();
    // Waits only while another process holds the same key (see `lock_key`)
    // or a check holds it for the length of one statement.
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(lock_key(owner))
        .execute(&mut session)
        .await?;
    Ok(session)
}

/// A round trip on the lock's session: fails once the session is gone, and
/// keeps it from counting as idle to a server or proxy timeout.
pub(crate) async fn ping(session: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(session).await.map(|_| ())
}

/// What the database says about a holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockCheck {
    /// No session holds the holder's lock.
    pub(crate) free: bool,
    /// When the database server started (Unix seconds).
    pub(crate) server_since: i64,
}

/// Tests `holder`'s lock. Taking it for the length of this statement is the
/// one way to test it without reading the whole lock table; `None` on SQLite,
/// which has no other processes.
pub(crate) async fn check(db: &DatabaseConnection, holder: &str) -> DbResult<Option<LockCheck>> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock($1) AS free, \
             floor(extract(epoch FROM pg_postmaster_start_time()))::bigint AS server_since",
            [lock_key(holder).into()],
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound("lock check".into()))?;
    Ok(Some(LockCheck {
        free: row.try_get("", "free")?,
        server_since: row.try_get("", "server_since")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_differ_between_processes() {
        // Pinned: replicas of different versions must agree on the key.
        assert_eq!(
            lock_key("pod-a/1/0123456789ab"),
            lock_key("pod-a/1/0123456789ab")
        );
        assert_eq!(lock_key(""), 0x9b7f_8f00_dcaf_1590_u64 as i64);
        assert_ne!(
            lock_key("pod-a/1/0123456789ab"),
            lock_key("pod-a/1/0123456789ac")
        );
    }
}
