//! The last check, with the faults off and every replica up: every connection is asked for a
//! token, which the fake's user endpoint must accept as the connection's user's; or it answers
//! NEEDS_REAUTH, whose reason the verdict weighs against the fake's records.

use std::{sync::Arc, time::Duration};

use crate::{
    calls,
    client::Ending,
    cluster::Cluster,
    connections::Connections,
    journal::{Call, Journal, Phase},
    load::NEEDS_REAUTH,
    settle::{LANES, TRIES},
    shared::fake::FakeProvider,
};

/// What the last token check found for a connection.
#[derive(Clone, Debug)]
pub enum FinalToken {
    /// A token the fake's user endpoint accepted, for this connection's user.
    Accepted,
    /// A token the fake did not accept (status, or the user it belongs to).
    NotAccepted(String),
    /// NEEDS_REAUTH, with authbroker's message (the stored reason).
    NeedsReauth(String),
    /// Anything else.
    Failed(String),
}

/// Asks every connection for a token and checks it at the fake.
pub async fn check(
    cluster: &Arc<Cluster>,
    connections: &Arc<Connections>,
    fake: &FakeProvider,
    journal: &mut Journal,
) -> Vec<FinalToken> {
    let http = reqwest::Client::new();
    let userinfo = fake.userinfo_url().expect("ARES has a user endpoint");
    let mut lanes = tokio::task::JoinSet::new();
    for lane in 0..LANES {
        let (cluster, connections, http, userinfo) = (
            cluster.clone(),
            connections.clone(),
            http.clone(),
            userinfo.clone(),
        );
        lanes.spawn(async move {
            let mut out = Vec::new();
            for i in (lane..connections.len()).step_by(LANES) {
                let mut calls = Vec::new();
                let last = token_of(&cluster, &connections, i, &http, &userinfo, &mut calls).await;
                out.push((i, last, calls));
            }
            out
        });
    }
    let mut finals = vec![FinalToken::Failed("not checked".into()); connections.len()];
    for (i, last, calls) in lanes.join_all().await.into_iter().flatten() {
        finals[i] = last;
        journal.calls.extend(calls);
    }
    finals
}

async fn token_of(
    cluster: &Cluster,
    connections: &Connections,
    i: usize,
    http: &reqwest::Client,
    userinfo: &str,
    calls: &mut Vec<Call>,
) -> FinalToken {
    for _ in 0..TRIES {
        let pick = cluster.pick().expect("every replica is up");
        let (call, answer) = calls::get_token(cluster, &pick, connections, i, Phase::Check).await;
        let ending = call.ending.clone();
        calls.push(call);
        match (answer, ending) {
            (Some(token), _) => {
                return accepted(
                    http,
                    userinfo,
                    &token.access_token,
                    &connections.get(i).user,
                )
                .await;
            }
            (None, Ending::Refused(r)) if r.reason == NEEDS_REAUTH => {
                return FinalToken::NeedsReauth(r.message);
            }
            (None, Ending::Refused(r)) if r.reason == "REFRESH_IN_PROGRESS" => {
                tokio::time::sleep(r.retry_after.unwrap_or(Duration::from_secs(1))).await;
            }
            (None, other) => return FinalToken::Failed(other.label()),
        }
    }
    FinalToken::Failed("REFRESH_IN_PROGRESS on every try".into())
}

/// Whether the fake's user endpoint takes `token` as `user`'s.
async fn accepted(http: &reqwest::Client, userinfo: &str, token: &str, user: &str) -> FinalToken {
    let answer = http.get(userinfo).bearer_auth(token).send().await;
    let response = match answer {
        Ok(r) => r,
        Err(e) => return FinalToken::NotAccepted(format!("user endpoint unreachable: {e}")),
    };
    let status = response.status();
    let body: serde_json::Value = response
        .text()
        .await
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    match body.get("id").and_then(|id| id.as_str()) {
        Some(id) if status.is_success() && id == user => FinalToken::Accepted,
        Some(id) if status.is_success() => {
            FinalToken::NotAccepted(format!("the token is {id}'s, the connection {user}'s"))
        }
        _ => FinalToken::NotAccepted(format!("the user endpoint answered {status}")),
    }
}
