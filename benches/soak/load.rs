//! The load under chaos: workers calling GetAccessToken on random connections, and workers
//! recording usage under fresh idempotency keys, retrying a key the way a careful client would
//! (on another replica when its replica died, after the RetryInfo delay when authbroker asked, and
//! only sometimes after a provider failure, so that both retried and abandoned keys occur).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    calls,
    client::Ending,
    cluster::{Cluster, REPLICAS},
    connections::Connections,
    journal::{Journal, KeyState, Phase, Surprise, UsageKey},
};

pub const NEEDS_REAUTH: &str = "CONNECTION_NEEDS_REAUTH";

/// How hard the workers push.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub token_workers: usize,
    pub usage_workers: usize,
    /// Pause between a token worker's requests.
    pub token_pause: Duration,
    /// Pause between a usage worker's keys.
    pub usage_pause: Duration,
}

/// Attempts at one usage key during the load; what is still open is settled afterwards.
const KEY_ATTEMPTS: usize = 4;
/// Share of provider failures after which the worker retries the key at once.
const RETRY_AFTER_PROVIDER_FAILURE: f64 = 0.5;
/// Share of confirmed keys sent once more, to see them replayed.
const REPLAY_CHECK: f64 = 0.05;
/// Longest RetryInfo delay a worker honours before trying again.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Runs the workers until `until` and returns what they did.
pub async fn run(
    cluster: &Arc<Cluster>,
    connections: &Arc<Connections>,
    shape: Shape,
    until: Instant,
) -> Journal {
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..shape.token_workers {
        let (cluster, connections) = (cluster.clone(), connections.clone());
        workers.spawn(async move { token_worker(&cluster, &connections, shape, until).await });
    }
    for w in 0..shape.usage_workers {
        let (cluster, connections) = (cluster.clone(), connections.clone());
        workers.spawn(async move { usage_worker(w, &cluster, &connections, shape, until).await });
    }
    let mut journal = Journal::default();
    for part in workers.join_all().await {
        journal.absorb(part);
    }
    journal
}

async fn token_worker(
    cluster: &Cluster,
    connections: &Connections,
    shape: Shape,
    until: Instant,
) -> Journal {
    let mut journal = Journal::default();
    while Instant::now() < until {
        let Some(connection) = connections.pick() else {
            break;
        };
        // One request, failed over to the next replica while the one it reached died under it.
        for _ in 0..REPLICAS {
            let Some(pick) = cluster.pick() else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let (call, _) =
                calls::get_token(cluster, &pick, connections, connection, Phase::Load).await;
            if call.ending.reason() == Some(NEEDS_REAUTH) {
                connections.mark_lost(connection);
            }
            let fail_over = call.replica_down;
            journal.calls.push(call);
            if !fail_over {
                break;
            }
        }
        tokio::time::sleep(shape.token_pause).await;
    }
    journal
}

async fn usage_worker(
    worker: usize,
    cluster: &Cluster,
    connections: &Connections,
    shape: Shape,
    until: Instant,
) -> Journal {
    let mut journal = Journal::default();
    let mut n = 0;
    while Instant::now() < until {
        let Some(connection) = connections.pick() else {
            break;
        };
        let key = format!("soak-usage-{worker}-{n}");
        n += 1;
        let state = usage_key(cluster, connections, connection, &key, &mut journal).await;
        journal.keys.push(UsageKey {
            key,
            connection,
            state,
        });
        tokio::time::sleep(shape.usage_pause).await;
    }
    journal
}

/// Records one key, retrying as the answers allow; what the service last said.
async fn usage_key(
    cluster: &Cluster,
    connections: &Connections,
    connection: usize,
    key: &str,
    journal: &mut Journal,
) -> KeyState {
    for _ in 0..KEY_ATTEMPTS {
        let Some(pick) = cluster.pick() else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let (call, answer) =
            calls::record_usage(cluster, &pick, connections, connection, key, Phase::Load).await;
        let ending = call.ending.clone();
        let replica_down = call.replica_down;
        journal.calls.push(call);
        let refusal = match (ending, answer) {
            (Ending::Ok, Some(_)) => {
                if rand::random::<f64>() < REPLAY_CHECK {
                    replay(cluster, connections, connection, key, journal).await;
                }
                return KeyState::Charged;
            }
            // The client cannot know what happened: same key, next replica.
            _ if replica_down => continue,
            (Ending::DeadlineCut | Ending::Transport(_), _) => continue,
            (Ending::Refused(refusal), _) => refusal,
            (Ending::Ok, None) => unreachable!("an OK ending has an answer"),
        };
        let delay = refusal
            .retry_after
            .unwrap_or(Duration::from_millis(200))
            .min(MAX_RETRY_DELAY);
        match refusal.reason.as_str() {
            NEEDS_REAUTH => {
                connections.mark_lost(connection);
                return KeyState::ConnectionLost;
            }
            "USAGE_IN_PROGRESS" => tokio::time::sleep(delay).await,
            "PROVIDER_UNAVAILABLE" | "PROVIDER_INVALID_RESPONSE"
                if rand::random::<f64>() < RETRY_AFTER_PROVIDER_FAILURE =>
            {
                tokio::time::sleep(delay).await
            }
            // USAGE_OUTCOME_UNKNOWN is settled with the fake's records afterwards, as an operator
            // would; the rest is judged by the verdict.
            _ => return KeyState::Open,
        }
    }
    KeyState::Open
}

/// Sends a confirmed key again: authbroker must answer from its ledger, `replayed`.
async fn replay(
    cluster: &Cluster,
    connections: &Connections,
    connection: usize,
    key: &str,
    journal: &mut Journal,
) {
    let Some(pick) = cluster.pick() else {
        return;
    };
    let (call, answer) =
        calls::record_usage(cluster, &pick, connections, connection, key, Phase::Load).await;
    let surprise = match (&call.ending, answer) {
        (_, Some(again)) if again.replayed => None,
        (_, Some(_)) => Some(format!(
            "{key}: a confirmed key was reported again, not replayed"
        )),
        _ if call.replica_down => None,
        (ending, None) => Some(format!(
            "{key}: a confirmed key was not replayed but answered {}",
            ending.label()
        )),
    };
    journal.calls.push(call);
    journal.surprises.extend(surprise.map(Surprise));
}
