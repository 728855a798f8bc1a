//! The replicas: three release-binary processes on one PostgreSQL database, each in a slot that
//! the chaos driver empties (SIGKILL) and fills again (a new process on a new port). Clients pick a
//! live slot; a call whose process died under it is told apart from a failure of a live one by the
//! slot's incarnation.
//!
//! Each slot's provider URLs carry `?replica=<slot>` (RFC 6749 §3.2 allows a query on the token
//! endpoint; the fake ignores it), so every request the fake records names the slot that sent it.

use std::{
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use crate::{
    client::{self, Client},
    server::{BenchDb, CALLBACK, Server},
    shared::fake::FakeProvider,
};

pub const REPLICAS: usize = 3;
/// The provider id in authbroker's config.
pub const PROVIDER: &str = "ares";
/// The query parameter naming the slot in provider URLs.
pub const SLOT_PARAM: &str = "replica";

/// One SIGKILL.
#[derive(Clone, Copy, Debug)]
pub struct Kill {
    pub slot: usize,
    /// Just before the signal was sent.
    pub at: Instant,
    /// When the process had been reaped.
    pub reaped: Instant,
}

/// A live slot handed to a client.
#[derive(Clone)]
pub struct Pick {
    pub slot: usize,
    pub incarnation: u64,
    pub client: Client,
}

struct Slot {
    /// The incarnation (bumped by every kill) and, while the process is up, a client of it.
    live: RwLock<(u64, Option<Client>)>,
    server: tokio::sync::Mutex<Option<Server>>,
}

pub struct Cluster {
    db: BenchDb,
    fake: FakeProvider,
    slots: Vec<Slot>,
    kills: Mutex<Vec<Kill>>,
    next: AtomicUsize,
}

impl Cluster {
    /// Starts the three replicas (the first one migrates the database).
    pub async fn start(db: BenchDb, fake: FakeProvider) -> Arc<Cluster> {
        let cluster = Arc::new(Cluster {
            db,
            fake,
            slots: (0..REPLICAS)
                .map(|_| Slot {
                    live: RwLock::new((0, None)),
                    server: tokio::sync::Mutex::new(None),
                })
                .collect(),
            kills: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
        });
        for slot in 0..REPLICAS {
            cluster.fill(slot).await;
        }
        cluster
    }

    /// The next live slot, round-robin; `None` while every slot is down.
    pub fn pick(&self) -> Option<Pick> {
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        (0..REPLICAS).find_map(|i| {
            let slot = (first + i) % REPLICAS;
            let live = self.slots[slot].live.read().expect("slot lock");
            live.1.clone().map(|client| Pick {
                slot,
                incarnation: live.0,
                client,
            })
        })
    }

    /// Whether the process a pick named has been killed since.
    pub fn went_down(&self, pick: &Pick) -> bool {
        let live = self.slots[pick.slot].live.read().expect("slot lock");
        live.0 != pick.incarnation || live.1.is_none()
    }

    /// SIGKILLs the slot's process and starts a new one in its place.
    pub async fn kill_and_restart(&self, slot: usize) {
        let mut server = self.slots[slot].server.lock().await;
        // No new call picks the slot from here on.
        {
            let mut live = self.slots[slot].live.write().expect("slot lock");
            live.0 += 1;
            live.1 = None;
        }
        let at = Instant::now();
        if let Some(process) = server.take() {
            // `Server::stop` is `Child::kill`: SIGKILL, then wait for the exit.
            process.stop().await;
        }
        let reaped = Instant::now();
        self.kills
            .lock()
            .expect("kills lock")
            .push(Kill { slot, at, reaped });
        drop(server);
        self.fill(slot).await;
    }

    /// Every kill so far, in order.
    pub fn kills(&self) -> Vec<Kill> {
        self.kills.lock().expect("kills lock").clone()
    }

    /// Stops every process and drops the database.
    pub async fn shut_down(self: Arc<Self>) {
        for slot in &self.slots {
            if let Some(process) = slot.server.lock().await.take() {
                process.stop().await;
            }
        }
        match Arc::try_unwrap(self) {
            Ok(mut cluster) => cluster.db.drop_database().await,
            Err(_) => eprintln!("soak: the cluster is still shared; its database is left behind"),
        }
    }

    /// Starts a process in an empty slot and opens it to clients once it answers SERVING.
    async fn fill(&self, slot: usize) {
        let process = Server::start(&self.db, None, &self.config(slot)).await;
        let client = client::connect(&process.addr).await;
        *self.slots[slot].server.lock().await = Some(process);
        let mut live = self.slots[slot].live.write().expect("slot lock");
        live.1 = Some(client);
    }

    /// The config lines `Server::start` does not write: the background refresher on, the provider,
    /// its URLs naming the slot.
    fn config(&self, slot: usize) -> String {
        let fake = &self.fake;
        let tagged = |url: String| format!("{url}?{SLOT_PARAM}={slot}");
        // The background refresher as deployed (its default pass every
        // second), renewing tokens past half their life.
        format!(
            "refresh_interval_secs = 1\n\
             [providers.{PROVIDER}]\nkind = \"ares\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n\
             redirect_uris = [\"{CALLBACK}\"]\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\n\
             userinfo_url = \"{}\"\nusage_url = \"{}\"\n",
            fake.client_id(),
            fake.client_secret(),
            fake.authorize_url(),
            tagged(fake.token_url()),
            tagged(fake.userinfo_url().expect("ARES has a user endpoint")),
            tagged(fake.usage_url().expect("ARES has a usage endpoint")),
        )
    }
}
