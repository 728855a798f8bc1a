//! Telling a dead lease holder from a slow one, so a replica killed in the
//! middle of a refresh or a usage report blocks its connection for about two
//! seconds instead of a whole lease. `flow::liveness` states the rule; this
//! holds this process's lock on PostgreSQL and tests other holders'.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use sea_orm::{DatabaseConnection, DbBackend, sqlx::PgConnection};

use crate::{
    clock::SharedClock,
    flow::{
        liveness::{free_lock_proves_death, missed_renewal},
        refresh::earlier_incarnation,
    },
    store::liveness as locks,
};

/// How often the lock's session is pinged, and retaken once lost.
const PING: Duration = Duration::from_secs(1);
/// How long a holder found alive is not tested again: waiters poll its row
/// every few tens of milliseconds.
const ALIVE_FOR_MS: i64 = 250;
/// Holders remembered at most; the memory is cleared beyond.
const REMEMBERED: usize = 4_096;

#[derive(Debug, Clone, Copy)]
enum Seen {
    /// Its lock was held (or the check failed) at this instant (ms).
    Alive(i64),
    /// Dead for good: a process name is never reused.
    Dead,
}

/// Judges lease holders for this process.
pub(crate) struct Liveness {
    db: DatabaseConnection,
    owner: String,
    clock: SharedClock,
    seen: Mutex<HashMap<String, Seen>>,
}

impl Liveness {
    pub(crate) fn new(db: DatabaseConnection, owner: String, clock: SharedClock) -> Self {
        Self {
            db,
            owner,
            clock,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `holder`, whose lease (of `lease_secs`) runs until
    /// `lease_until`, is known dead: an earlier incarnation of this process,
    /// or on PostgreSQL a process that missed a renewal and whose lock is
    /// free.
    pub(crate) async fn holder_dead(
        &self,
        holder: &str,
        lease_until: i64,
        lease_secs: i64,
    ) -> bool {
        if earlier_incarnation(holder, &self.owner) {
            return true;
        }
        let renewed_at = lease_until - lease_secs;
        if holder == self.owner
            || self.db.get_database_backend() != DbBackend::Postgres
            || !missed_renewal(self.clock.now(), renewed_at)
        {
            return false;
        }
        let now_ms = self.clock.now_millis();
        match self.remembered(holder) {
            Some(Seen::Dead) => return true,
            Some(Seen::Alive(at)) if now_ms - at < ALIVE_FOR_MS => return false,
            _ => {}
        }
        let dead = match locks::check(&self.db, holder).await {
            Ok(Some(lock)) => lock.free && free_lock_proves_death(renewed_at, lock.server_since),
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "testing a lease holder's lock failed");
                false
            }
        };
        if dead {
            tracing::warn!(
                holder,
                "a lease holder's process is gone (lock released, renewals stopped): taking over before its lease ends"
            );
        }
        self.remember(
            holder,
            if dead {
                Seen::Dead
            } else {
                Seen::Alive(now_ms)
            },
        );
        dead
    }

    fn remembered(&self, holder: &str) -> Option<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(holder)
            .copied()
    }

    fn remember(&self, holder: &str, seen: Seen) {
        let mut map = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= REMEMBERED {
            map.clear();
        }
        map.insert(holder.to_owned(), seen);
    }

    /// On PostgreSQL, takes this process's lock, then keeps it for the
    /// process's life: pings its session every second and takes it again on a
    /// new session once lost. Returns once the first attempt is done, so the
    /// lock is held before the first lease is taken.
    pub(crate) async fn hold_lock(&self) {
        if self.db.get_database_backend() != DbBackend::Postgres {
            return;
        }
        let session = match locks::lock(&self.db, &self.owner).await {
            Ok(session) => Some(session),
            Err(e) => {
                tracing::warn!(error = %e, "taking the process lock failed; retrying every second");
                None
            }
        };
        tokio::spawn(keep(self.db.clone(), self.owner.clone(), session));
    }
}

/// The keeper of this process's lock. While the lock is lost, leases this
/// process holds still count as live while it renews them.
async fn keep(db: DatabaseConnection, owner: String, mut session: Option<PgConnection>) {
    let mut lost_logged = session.is_none();
    loop {
        tokio::time::sleep(PING).await;
        if let Some(s) = session.as_mut() {
            if let Err(e) = locks::ping(s).await {
                tracing::warn!(error = %e, "the process lock's database session was lost; taking the lock again");
                session = None;
                lost_logged = true;
            } else {
                continue;
            }
        }
        match locks::lock(&db, &owner).await {
            Ok(s) => {
                tracing::info!("process lock taken");
                session = Some(s);
                lost_logged = false;
            }
            Err(e) if !lost_logged => {
                tracing::warn!(error = %e, "taking the process lock failed; retrying every second");
                lost_logged = true;
            }
            Err(_) => {}
        }
    }
}
