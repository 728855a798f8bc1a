//! The soak's connections: one fake user each (so the fake's records tell connections apart),
//! connected through the real flow (BeginAuth, the user approves at the fake, CompleteAuth), and
//! the ones a worker saw turn NEEDS_REAUTH, which the load leaves alone from then on.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use authbroker::pb::{self, complete_auth_response::Outcome};

use crate::{
    cluster::{Cluster, PROVIDER},
    server::CALLBACK,
    shared::fake::FakeProvider,
};

/// Credits each fake user starts with: more than any run spends.
const CREDITS: i64 = 1_000_000_000;
/// Connections set up at once.
const PARALLEL: usize = 8;

pub struct Connection {
    /// authbroker's connection id.
    pub id: String,
    /// The fake user behind it.
    pub user: String,
    lost: AtomicBool,
}

pub struct Connections(Vec<Connection>);

impl Connections {
    /// Connects `n` users, `PARALLEL` at a time, each on the next live replica.
    pub async fn connect(cluster: &Arc<Cluster>, fake: &FakeProvider, n: usize) -> Connections {
        let mut tasks = tokio::task::JoinSet::new();
        for lane in 0..PARALLEL.min(n) {
            let (cluster, fake) = (cluster.clone(), fake.clone());
            tasks.spawn(async move {
                let mut made = Vec::new();
                for i in (lane..n).step_by(PARALLEL) {
                    made.push((i, connect_one(&cluster, &fake, i).await));
                }
                made
            });
        }
        let mut all: Vec<_> = tasks.join_all().await.into_iter().flatten().collect();
        all.sort_by_key(|(i, _)| *i);
        Connections(all.into_iter().map(|(_, c)| c).collect())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn get(&self, i: usize) -> &Connection {
        &self.0[i]
    }

    /// A random connection not seen lost; `None` once every one is.
    pub fn pick(&self) -> Option<usize> {
        for _ in 0..64 {
            let i = rand::random_range(0..self.0.len());
            if !self.0[i].lost.load(Ordering::Relaxed) {
                return Some(i);
            }
        }
        self.0.iter().position(|c| !c.lost.load(Ordering::Relaxed))
    }

    /// A worker saw the connection answer NEEDS_REAUTH: no user is there to connect it again.
    pub fn mark_lost(&self, i: usize) {
        self.0[i].lost.store(true, Ordering::Relaxed);
    }

    pub fn seen_lost(&self, i: usize) -> bool {
        self.0[i].lost.load(Ordering::Relaxed)
    }
}

async fn connect_one(cluster: &Cluster, fake: &FakeProvider, i: usize) -> Connection {
    let user = format!("soak-user-{i}");
    fake.add_user(&user, &format!("{user}@example.test"), "pw", CREDITS);
    let mut client = cluster.pick().expect("every replica is up").client;
    let begun = client
        .begin_auth(pb::BeginAuthRequest {
            provider: PROVIDER.into(),
            subject: format!("soak-subject-{i}"),
            redirect_uri: CALLBACK.into(),
            ..Default::default()
        })
        .await
        .expect("BeginAuth")
        .into_inner();
    let mut params = fake.approve(&begun.authorization_url, &user).await;
    let completed = client
        .complete_auth(pb::CompleteAuthRequest {
            state: params.remove("state").unwrap_or_default(),
            code: params.remove("code").unwrap_or_default(),
            ..Default::default()
        })
        .await
        .expect("CompleteAuth")
        .into_inner();
    match completed.outcome {
        Some(Outcome::Connection(connection)) => Connection {
            id: connection.id,
            user,
            lost: AtomicBool::new(false),
        },
        other => panic!("CompleteAuth for {user} did not connect: {other:?}"),
    }
}
