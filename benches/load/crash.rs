//! (7) Crash recovery: a replica is SIGKILLed while its refresh waits at the
//! provider; measured is the time until the connection answers for sure
//! again (a token, or NEEDS_REAUTH) — on PostgreSQL from the kill, on
//! another replica that was up all along (limit: 5 s: the killed process's
//! lock is gone at once and its lease renewals stop, so its lease goes after
//! about 2 s instead of 10); on SQLite from the restarted process's SERVING
//! (limit: 2 s).

use std::{
    fmt::Write as _,
    time::{Duration, Instant},
};

use authbroker::pb;
use tonic::Code;

use crate::{
    scenarios::{Client, Clients, connect_one},
    server::{Backend, BenchDb, Server},
    shared::fake::FakeProvider,
};

/// Longer than any round: the killed refresh stays at the provider until
/// after the connection has recovered.
const HELD: Duration = Duration::from_secs(30);

/// One backend's rounds: seconds to recover and how each ended.
pub struct CrashRun {
    pub backend: Backend,
    pub rounds: Vec<(f64, &'static str)>,
}

impl CrashRun {
    /// The bound the recovery must stay within, in seconds.
    pub fn limit(&self) -> f64 {
        match self.backend {
            Backend::Postgres => 5.0,
            Backend::Sqlite => 2.0,
        }
    }

    pub fn worst(&self) -> f64 {
        self.rounds.iter().map(|(s, _)| *s).fold(0.0, f64::max)
    }
}

/// A forced refresh with a 2 s deadline: `Some(outcome)` once the answer is
/// definitive, `None` to ask again.
async fn definitive(client: &Client, id: &str) -> Option<&'static str> {
    let mut request = tonic::Request::new(pb::GetAccessTokenRequest {
        connection_id: id.into(),
        force_refresh: true,
        ..Default::default()
    });
    request.set_timeout(Duration::from_secs(2));
    match client.clone().get_access_token(request).await {
        Ok(_) => Some("served"),
        Err(s) if s.code() == Code::FailedPrecondition => Some("needs re-auth"),
        Err(_) => None,
    }
}

async fn until_definitive(client: &Client, id: &str) -> &'static str {
    let started = Instant::now();
    loop {
        if let Some(outcome) = definitive(client, id).await {
            return outcome;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never recovered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn recover(fake: &FakeProvider, backend: Backend, rounds: usize) -> CrashRun {
    let mut db = BenchDb::create(backend).await;
    // Back-to-back forced refreshes must reach the provider.
    let extra = "force_refresh_cooldown_secs = 0";
    let mut holder = Server::start(&db, Some(fake), extra).await;
    let other = match backend {
        Backend::Postgres => Some(Server::start(&db, Some(fake), extra).await),
        Backend::Sqlite => None,
    };
    fake.set_token_lifetime(Some(86_400));
    let mut run = CrashRun {
        backend,
        rounds: Vec::new(),
    };
    for round in 0..rounds {
        let clients = Clients::new(&holder.addr, 1).await;
        let id = connect_one(&clients.api(0), fake, &format!("crash-{round}"))
            .await
            .expect("connect");
        fake.set_delay(HELD);
        let before = fake.token_requests("refresh_token");
        let api = clients.api(0);
        let pending = {
            let id = id.clone();
            tokio::spawn(async move { definitive(&api, &id).await })
        };
        while fake.token_requests("refresh_token") == before {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        holder.stop().await;
        let killed = Instant::now();
        pending.abort();
        fake.set_delay(Duration::ZERO);
        let (seconds, outcome) = match &other {
            Some(other) => {
                let survivor = Clients::new(&other.addr, 1).await.api(0);
                let outcome = until_definitive(&survivor, &id).await;
                holder = Server::start(&db, Some(fake), extra).await;
                (killed.elapsed().as_secs_f64(), outcome)
            }
            None => {
                holder = Server::start(&db, Some(fake), extra).await;
                let serving = Instant::now();
                let restarted = Clients::new(&holder.addr, 1).await.api(0);
                let outcome = until_definitive(&restarted, &id).await;
                (serving.elapsed().as_secs_f64(), outcome)
            }
        };
        eprintln!(
            "(7) crash recovery, {}: {seconds:.2} s ({outcome})",
            backend.name()
        );
        run.rounds.push((seconds, outcome));
    }
    holder.stop().await;
    if let Some(other) = other {
        other.stop().await;
    }
    db.drop_database().await;
    run
}

/// The section of the results table.
pub fn table(runs: &[CrashRun]) -> String {
    let mut out = String::from(
        "\n| (7) crash recovery | measured from | rounds | worst s | limit s | outcomes |\n|---|---|---:|---:|---:|---|\n",
    );
    for r in runs {
        let outcomes: Vec<String> = r
            .rounds
            .iter()
            .map(|(s, o)| format!("{s:.2} s {o}"))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} | {:.0} | {} |",
            r.backend.name(),
            match r.backend {
                Backend::Postgres => "the SIGKILL (another replica up)",
                Backend::Sqlite => "the restarted process SERVING",
            },
            r.rounds.len(),
            r.worst(),
            r.limit(),
            outcomes.join(", ")
        );
    }
    out
}
