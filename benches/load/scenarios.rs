//! The scenarios: what each one calls, against which server.

use std::{sync::Arc, time::Duration};

use authbroker::pb::{self, auth_broker_client::AuthBrokerClient, complete_auth_response::Outcome};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{
    Settings,
    server::{CALLBACK, channel},
    shared::fake::FakeProvider,
    stats::{Stats, run, timed},
};

pub const USER: &str = "bench-user";

pub use crate::server::{Bearer, Client};

/// `settings.connections` HTTP/2 connections to one server, shared by all workers.
pub struct Clients {
    pub api: Vec<Client>,
    pub health: Vec<HealthClient<Channel>>,
}

impl Clients {
    pub async fn new(addr: &str, connections: usize) -> Clients {
        let bearer = Bearer::caller();
        let mut api = Vec::new();
        let mut health = Vec::new();
        for _ in 0..connections {
            let ch = channel(addr).await;
            api.push(AuthBrokerClient::with_interceptor(
                ch.clone(),
                bearer.clone(),
            ));
            health.push(HealthClient::new(ch));
        }
        Clients { api, health }
    }

    pub fn api(&self, worker: usize) -> Client {
        self.api[worker % self.api.len()].clone()
    }
}

/// Connects `n` subjects of the bench user through the real flow.
pub async fn connect_many(client: &Client, fake: &FakeProvider, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(
            connect_one(client, fake, &format!("subject-{i}"))
                .await
                .expect("connect"),
        );
    }
    ids
}

pub async fn connect_one(client: &Client, fake: &FakeProvider, subject: &str) -> Option<String> {
    let mut c = client.clone();
    let begun = c.begin_auth(begin(subject)).await.ok()?.into_inner();
    let params = fake.approve(&begun.authorization_url, USER).await;
    let outcome = c
        .complete_auth(complete(params))
        .await
        .ok()?
        .into_inner()
        .outcome;
    match outcome {
        Some(Outcome::Connection(conn)) => Some(conn.id),
        _ => None,
    }
}

fn begin(subject: &str) -> pb::BeginAuthRequest {
    pb::BeginAuthRequest {
        provider: "ares".into(),
        subject: subject.into(),
        redirect_uri: CALLBACK.into(),
        ..Default::default()
    }
}

fn complete(mut params: std::collections::BTreeMap<String, String>) -> pb::CompleteAuthRequest {
    pb::CompleteAuthRequest {
        state: params.remove("state").unwrap_or_default(),
        code: params.remove("code").unwrap_or_default(),
        ..Default::default()
    }
}

/// (1) The limit: the health check, an empty unary RPC on the same server.
pub async fn empty(clients: &Arc<Clients>, s: &Settings, concurrency: usize) -> Stats {
    let clients = clients.clone();
    run(concurrency, s.warmup, s.duration, move |w, _| {
        let mut h = clients.health[w % clients.health.len()].clone();
        async move { timed(h.check(HealthCheckRequest::default())).await }
    })
    .await
}

/// (2)/(3) GetAccessToken over a set of connections.
pub async fn get_token(
    clients: &Arc<Clients>,
    ids: &Arc<Vec<String>>,
    s: &Settings,
    concurrency: usize,
) -> Stats {
    let (clients, ids) = (clients.clone(), ids.clone());
    run(concurrency, s.warmup, s.duration, move |w, i| {
        let mut c = clients.api(w);
        let id = ids[(w * 7919 + i as usize) % ids.len()].clone();
        async move {
            timed(c.get_access_token(pb::GetAccessTokenRequest {
                connection_id: id,
                min_valid_seconds: 60,
                force_refresh: false,
                ..Default::default()
            }))
            .await
        }
    })
    .await
}

/// (4) What a user would build instead: the token row read straight from
/// PostgreSQL by primary key.
pub async fn direct_read(
    db: &DatabaseConnection,
    ids: &Arc<Vec<String>>,
    s: &Settings,
    concurrency: usize,
) -> Stats {
    let (db, ids) = (db.clone(), ids.clone());
    run(concurrency, s.warmup, s.duration, move |w, i| {
        let db = db.clone();
        let id = ids[(w * 7919 + i as usize) % ids.len()].clone();
        async move {
            timed(db.query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT access_token, access_token_expires_at FROM connections WHERE id = $1",
                [id.into()],
            )))
            .await
        }
    })
    .await
}

/// Opens every connection of a pool before it is measured: establishing
/// PostgreSQL connections is not what (4) measures.
pub async fn open_all(db: &DatabaseConnection, n: usize) {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            // Hold each connection a moment so the pool must open all of them.
            let _ = db.execute_unprepared("SELECT pg_sleep(0.05)").await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// (5) BeginAuth alone.
pub async fn begin_auth(clients: &Arc<Clients>, s: &Settings, concurrency: usize) -> Stats {
    let clients = clients.clone();
    run(concurrency, s.warmup, s.duration, move |w, i| {
        let mut c = clients.api(w);
        async move { timed(c.begin_auth(begin(&format!("begin-{w}-{i}")))).await }
    })
    .await
}

/// (5) CompleteAuth: begin and the user's approval are set-up, only the
/// completion (state check, code exchange, user info, store) is measured.
pub async fn complete_auth(
    clients: &Arc<Clients>,
    fake: &FakeProvider,
    s: &Settings,
    concurrency: usize,
) -> Stats {
    let (clients, fake) = (clients.clone(), fake.clone());
    run(concurrency, s.warmup, s.duration, move |w, i| {
        let mut c = clients.api(w);
        let fake = fake.clone();
        async move {
            let begun = c
                .begin_auth(begin(&format!("complete-{w}-{i}")))
                .await
                .ok()?
                .into_inner();
            let params = fake.approve(&begun.authorization_url, USER).await;
            timed(c.complete_auth(complete(params))).await
        }
    })
    .await
}

/// (5) RecordUsage with a fresh idempotency key per call.
pub async fn record_usage(
    clients: &Arc<Clients>,
    ids: &Arc<Vec<String>>,
    s: &Settings,
    concurrency: usize,
    run_id: usize,
) -> Stats {
    let (clients, ids) = (clients.clone(), ids.clone());
    run(concurrency, s.warmup, s.duration, move |w, i| {
        let mut c = clients.api(w);
        let id = ids[(w + i as usize) % ids.len()].clone();
        async move {
            timed(c.record_usage(pb::RecordUsageRequest {
                connection_id: id,
                usage: "bench".into(),
                credits: 1.0,
                idempotency_key: format!("{run_id}-{concurrency}-{w}-{i}"),
            }))
            .await
        }
    })
    .await
}

/// (6) One refresh storm: `callers` concurrent GetAccessToken calls on one
/// expired connection. Returns each caller's latency.
pub async fn storm(clients: &Arc<Clients>, id: &str, callers: usize) -> Vec<Option<Duration>> {
    let mut tasks = Vec::with_capacity(callers);
    for w in 0..callers {
        let mut c = clients.api(w);
        let id = id.to_owned();
        tasks.push(tokio::spawn(async move {
            timed(c.get_access_token(pb::GetAccessTokenRequest {
                connection_id: id,
                min_valid_seconds: 1,
                force_refresh: false,
                ..Default::default()
            }))
            .await
        }));
    }
    let mut out = Vec::with_capacity(callers);
    for t in tasks {
        out.push(t.await.ok().flatten());
    }
    out
}
