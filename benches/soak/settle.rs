//! After the chaos, with the faults off and every replica up, every usage key left open is sent
//! once more: an unknown outcome is settled with ResolveUsage from the fake's ledger, and the key
//! must then replay (charged) or report again (not charged) as README "Charge credits" says.

use std::{collections::HashMap, sync::Arc, time::Duration};

use crate::{
    calls,
    client::Ending,
    cluster::Cluster,
    connections::Connections,
    journal::{Journal, KeyState, Phase, Surprise},
    load::NEEDS_REAUTH,
    records::Records,
    shared::fake::FakeProvider,
};

/// Calls in flight at once in the check phase.
pub const LANES: usize = 8;
/// Tries per key or connection (a USAGE_IN_PROGRESS or REFRESH_IN_PROGRESS is waited out).
pub const TRIES: usize = 6;

/// How the open keys were settled.
#[derive(Default, Debug)]
pub struct Settlement {
    /// Keys the service had recorded as charged although the client never heard (replayed).
    pub replayed: usize,
    /// Keys reported again (nothing had reached the provider, or it refused).
    pub reported: usize,
    /// USAGE_OUTCOME_UNKNOWN settled as charged (the fake had charged).
    pub unknown_charged: usize,
    /// USAGE_OUTCOME_UNKNOWN settled as not charged.
    pub unknown_not_charged: usize,
    /// Keys whose connection is lost, with nothing charged.
    pub lost: usize,
}

/// Settles every key not confirmed during the load; updates the keys' states.
pub async fn usage(
    cluster: &Arc<Cluster>,
    connections: &Arc<Connections>,
    fake: &FakeProvider,
    journal: &mut Journal,
) -> Settlement {
    let records = Records::read(fake);
    let charged: Arc<HashMap<String, usize>> = Arc::new(
        records
            .charges_by_key()
            .into_iter()
            .map(|(k, n)| (k.to_owned(), n))
            .collect(),
    );
    let open: Vec<(usize, String, usize)> = journal
        .keys
        .iter()
        .enumerate()
        .filter(|(_, k)| !matches!(k.state, KeyState::Charged))
        .map(|(i, k)| (i, k.key.clone(), k.connection))
        .collect();
    let mut lanes = tokio::task::JoinSet::new();
    for lane in 0..LANES {
        let mine: Vec<_> = open.iter().skip(lane).step_by(LANES).cloned().collect();
        let (cluster, connections, charged) =
            (cluster.clone(), connections.clone(), charged.clone());
        lanes.spawn(async move {
            let mut out = Vec::new();
            for (i, key, connection) in mine {
                let mut part = Journal::default();
                let settled = settle_key(
                    &cluster,
                    &connections,
                    &charged,
                    connection,
                    &key,
                    &mut part,
                )
                .await;
                out.push((i, settled, part));
            }
            out
        });
    }
    let mut settlement = Settlement::default();
    for (i, settled, part) in lanes.join_all().await.into_iter().flatten() {
        journal.absorb(part);
        match settled {
            Settled::Replayed => settlement.replayed += 1,
            Settled::Reported => settlement.reported += 1,
            Settled::Resolved { charged: true } => settlement.unknown_charged += 1,
            Settled::Resolved { charged: false } => settlement.unknown_not_charged += 1,
            Settled::ResolvedThenLost => {
                settlement.unknown_not_charged += 1;
                settlement.lost += 1;
            }
            Settled::Lost => settlement.lost += 1,
            Settled::Not => {}
        }
        journal.keys[i].state = settled.state();
    }
    settlement
}

enum Settled {
    /// The key replayed as succeeded.
    Replayed,
    /// The key was reported (again) and confirmed.
    Reported,
    /// Its unknown outcome was settled, and the key then replayed or reported as documented.
    Resolved { charged: bool },
    /// Settled as not charged; reporting again found the connection lost.
    ResolvedThenLost,
    /// The connection is lost (nothing reached the provider).
    Lost,
    /// Not settled (a surprise says why).
    Not,
}

impl Settled {
    fn state(&self) -> KeyState {
        match self {
            Settled::Replayed | Settled::Reported | Settled::Resolved { .. } => KeyState::Charged,
            Settled::ResolvedThenLost | Settled::Lost => KeyState::ConnectionLost,
            Settled::Not => KeyState::Open,
        }
    }
}

async fn settle_key(
    cluster: &Cluster,
    connections: &Connections,
    charged: &HashMap<String, usize>,
    connection: usize,
    key: &str,
    journal: &mut Journal,
) -> Settled {
    for _ in 0..TRIES {
        let pick = cluster.pick().expect("every replica is up");
        let (call, answer) =
            calls::record_usage(cluster, &pick, connections, connection, key, Phase::Check).await;
        let ending = call.ending.clone();
        journal.calls.push(call);
        let refusal = match (ending, answer) {
            (_, Some(a)) if a.replayed => return Settled::Replayed,
            (_, Some(_)) => return Settled::Reported,
            (Ending::Refused(refusal), _) => refusal,
            (other, _) => {
                journal.surprises.push(Surprise(format!(
                    "{key}: with every replica up, RecordUsage ended {}",
                    other.label()
                )));
                continue;
            }
        };
        match refusal.reason.as_str() {
            NEEDS_REAUTH => return Settled::Lost,
            "USAGE_IN_PROGRESS" => {
                tokio::time::sleep(refusal.retry_after.unwrap_or(Duration::from_secs(1))).await
            }
            "USAGE_OUTCOME_UNKNOWN" => {
                let usage_id = refusal
                    .metadata
                    .get("usage_id")
                    .cloned()
                    .unwrap_or_default();
                let was_charged = charged.get(key).copied().unwrap_or(0) > 0;
                return resolve(
                    cluster,
                    connections,
                    connection,
                    key,
                    &usage_id,
                    was_charged,
                    journal,
                )
                .await;
            }
            other => {
                journal.surprises.push(Surprise(format!(
                    "{key}: with the faults off, RecordUsage answered {other}: {}",
                    refusal.message
                )));
                return Settled::Not;
            }
        }
    }
    Settled::Not
}

/// ResolveUsage with what the fake recorded, then the same key once more: after CHARGED it must
/// replay, after NOT_CHARGED report again (README "Charge credits").
async fn resolve(
    cluster: &Cluster,
    connections: &Connections,
    connection: usize,
    key: &str,
    usage_id: &str,
    charged: bool,
    journal: &mut Journal,
) -> Settled {
    let pick = cluster.pick().expect("every replica is up");
    let (call, resolved) =
        calls::resolve_usage(cluster, &pick, connection, key, usage_id, charged).await;
    let ending = call.ending.label();
    journal.calls.push(call);
    if resolved.is_none() {
        journal.surprises.push(Surprise(format!(
            "{key}: ResolveUsage(charged: {charged}) answered {ending}"
        )));
        return Settled::Not;
    }
    let pick = cluster.pick().expect("every replica is up");
    let (call, again) =
        calls::record_usage(cluster, &pick, connections, connection, key, Phase::Check).await;
    let ending = call.ending.clone();
    journal.calls.push(call);
    match (again, ending.reason()) {
        (Some(a), _) if a.replayed == charged => Settled::Resolved { charged },
        (None, Some(NEEDS_REAUTH)) if !charged => Settled::ResolvedThenLost,
        (again, _) => {
            let said = match again {
                Some(a) if a.replayed => "replayed".to_owned(),
                Some(_) => "reported again".to_owned(),
                None => ending.label(),
            };
            journal.surprises.push(Surprise(format!(
                "{key}: after ResolveUsage(charged: {charged}) the same key {said}"
            )));
            Settled::Not
        }
    }
}
