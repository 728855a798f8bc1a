//! The audit trail: every access token handed out, usage charged or
//! resolved, connection created, re-authorized or revoked, policy denial and
//! failed caller authentication becomes an event, appended to the
//! `audit_events` table and logged (target `audit`). Calls only queue their
//! event; a writer task stores and logs them in batches. Tokens handed out
//! are counted per caller and connection and written once a second (one
//! event with the count and the first call's trace id): an event per cached
//! token, at tens of thousands a second, would cost the hot path half its
//! throughput. Events never carry a secret: the fields are ids, names and
//! reasons.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry::trace::TraceContextExt as _;
use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, oneshot};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{
    clock::SharedClock,
    store::audit::{self, AuditRow},
};

/// Events queued at most; beyond, an event is dropped and counted (the
/// writer is behind the database by this many).
const QUEUE: usize = 65_536;
/// Events stored per insert.
const BATCH: usize = 500;
/// Attempts to store a batch before it is given up (and counted).
const ATTEMPTS: u32 = 3;
/// How often the tokens handed out are written, as one event per caller
/// and connection.
const SERVED_EVERY: Duration = Duration::from_secs(1);

/// Tokens handed out since the last write, by caller and connection.
type Served = HashMap<String, HashMap<String, Count>>;

/// One caller's tokens of one connection in the current window.
struct Count {
    n: u64,
    first_ms: i64,
    trace_id: Option<String>,
}

/// What happened, as the caller did it.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// The caller (or, for a failed authentication, `-`).
    pub(crate) caller: String,
    /// The connection concerned.
    pub(crate) connection_id: Option<String>,
    /// `token_served`, `usage_charged`, `usage_resolved`,
    /// `connection_created`, `connection_reauthorized`, `connection_revoked`,
    /// `policy_denied`, `caller_unauthenticated`.
    pub(crate) action: &'static str,
    /// `ok`, or the error reason.
    pub(crate) outcome: String,
    /// Non-secret facts.
    pub(crate) detail: Option<String>,
}

enum Msg {
    Event(Box<AuditRow>),
    Flush(oneshot::Sender<()>),
}

/// The handle calls record events with; cheap to clone.
#[derive(Clone)]
pub(crate) struct Audit {
    tx: mpsc::Sender<Msg>,
    clock: SharedClock,
    served: Arc<Mutex<Served>>,
}

impl Audit {
    /// Starts the writer.
    pub(crate) fn start(db: DatabaseConnection, clock: SharedClock) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(db, rx));
        let audit = Self {
            tx,
            clock,
            served: Arc::default(),
        };
        tokio::spawn(audit.clone().write_served());
        audit
    }

    /// Counts a token handed out to `caller` for `connection_id`.
    pub(crate) fn served(&self, caller: &str, connection_id: &str) {
        let mut served = self.served.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = served
            .get_mut(caller)
            .and_then(|by_connection| by_connection.get_mut(connection_id))
        {
            count.n += 1;
            return;
        }
        served.entry(caller.to_owned()).or_default().insert(
            connection_id.to_owned(),
            Count {
                n: 1,
                first_ms: self.clock.now_millis(),
                trace_id: current_trace_id(),
            },
        );
    }

    /// Every window, one `token_served` event per caller and connection.
    async fn write_served(self) {
        loop {
            tokio::time::sleep(SERVED_EVERY).await;
            self.drain_served();
        }
    }

    fn drain_served(&self) {
        let window = std::mem::take(&mut *self.served.lock().unwrap_or_else(|e| e.into_inner()));
        for (caller, by_connection) in window {
            for (connection_id, count) in by_connection {
                let row = AuditRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    at: count.first_ms,
                    caller: caller.clone(),
                    connection_id: Some(connection_id),
                    action: "token_served".to_owned(),
                    outcome: "ok".to_owned(),
                    detail: Some(format!(
                        "{} token(s) handed out within {} ms",
                        count.n,
                        SERVED_EVERY.as_millis()
                    )),
                    trace_id: count.trace_id,
                };
                self.queue(row);
            }
        }
    }

    /// Queues `event`, stamped now with the current trace id.
    pub(crate) fn record(&self, event: Event) {
        let row = AuditRow {
            id: uuid::Uuid::now_v7().to_string(),
            at: self.clock.now_millis(),
            caller: event.caller,
            connection_id: event.connection_id,
            action: event.action.to_owned(),
            outcome: event.outcome,
            detail: event.detail,
            trace_id: current_trace_id(),
        };
        self.queue(row);
    }

    fn queue(&self, row: AuditRow) {
        if self.tx.try_send(Msg::Event(Box::new(row))).is_err() {
            crate::telemetry::metrics::audit_dropped(1);
        }
    }

    /// Waits until every event so far is stored (at shutdown).
    pub(crate) async fn flush(&self) {
        self.drain_served();
        let (done, stored) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(10), stored).await;
        }
    }
}

/// The W3C trace id of the call being served, if it has one.
fn current_trace_id() -> Option<String> {
    let trace_id = tracing::Span::current()
        .context()
        .span()
        .span_context()
        .trace_id();
    (trace_id != opentelemetry::trace::TraceId::INVALID).then(|| trace_id.to_string())
}

async fn writer(db: DatabaseConnection, mut rx: mpsc::Receiver<Msg>) {
    let db = Arc::new(db);
    let mut batch: Vec<AuditRow> = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Event(row) => batch.push(*row),
                Msg::Flush(done) => flushes.push(done),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        store(&db, &mut batch).await;
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Logs and stores a batch, retrying a failing database a few times.
async fn store(db: &DatabaseConnection, batch: &mut Vec<AuditRow>) {
    for row in batch.iter() {
        tracing::info!(
            target: "audit",
            caller = %row.caller,
            connection_id = row.connection_id.as_deref().unwrap_or_default(),
            action = %row.action,
            outcome = %row.outcome,
            detail = row.detail.as_deref().unwrap_or_default(),
            trace_id = row.trace_id.as_deref().unwrap_or_default(),
            "audit event"
        );
    }
    for attempt in 1..=ATTEMPTS {
        match audit::append(db, batch.clone()).await {
            Ok(()) => {
                batch.clear();
                return;
            }
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "storing audit events failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            Err(e) => {
                tracing::error!(error = %e, events = batch.len(), "storing audit events failed; they are in the log only");
                crate::telemetry::metrics::audit_dropped(batch.len() as u64);
                batch.clear();
            }
        }
    }
}
