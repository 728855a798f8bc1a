//! Availability, latency and deadlines, from the clients' calls.
//!
//! A call during the load counts when it reached a live replica on a connection that was not lost
//! (a call to a replica killed under it is "replica down"; a connection lost to a kill has no user
//! left to serve). It is available when authbroker answered in time with what a correct service
//! answers under these faults: a token or a confirmation; a provider failure the fake really
//! answered (a 5xx for this connection or key within the call), passed on; or, for a usage key whose
//! earlier attempt ended without a definite answer, USAGE_OUTCOME_UNKNOWN / USAGE_IN_PROGRESS. Every
//! other ending counts against it.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::{Duration, Instant},
};

use crate::{
    client::{Ending, Refusal},
    cluster::Kill,
    journal::{Call, Phase, Rpc},
    records::Records,
    stats::Stats,
};

/// How far past its deadline a call may end before it counts as an overrun.
pub const DEADLINE_TOLERANCE: Duration = Duration::from_millis(250);
/// Slack when matching a passed-on provider failure to the fake's answer in time.
const MATCH_SLACK: Duration = Duration::from_millis(100);
/// Failed calls kept as evidence, per RPC.
const EXAMPLES: usize = 40;

#[derive(Debug)]
pub struct Availability {
    pub rpc: Rpc,
    /// Calls that reached a live replica on a connection not lost.
    pub counted: usize,
    /// ...answered with a token or a confirmation.
    pub served: usize,
    /// ...answered with a provider failure the fake really answered.
    pub passed_on: usize,
    /// ...answered USAGE_OUTCOME_UNKNOWN / USAGE_IN_PROGRESS after an attempt without an answer.
    pub pending: usize,
    /// ...anything else, by ending.
    pub failed: BTreeMap<String, usize>,
    /// The first failed calls, described.
    pub examples: Vec<String>,
}

impl Availability {
    pub fn ratio(&self) -> f64 {
        if self.counted == 0 {
            return 1.0;
        }
        (self.served + self.passed_on + self.pending) as f64 / self.counted as f64
    }

    pub fn failures(&self) -> usize {
        self.failed.values().sum()
    }
}

/// The fake's answers by connection user (token endpoint) and by usage key (usage endpoint).
pub struct Answers {
    token_by_user: HashMap<String, Vec<(Instant, u16)>>,
    usage_by_key: HashMap<String, Vec<(Instant, u16)>>,
}

impl Answers {
    pub fn index(records: &Records) -> Answers {
        let mut token_by_user: HashMap<String, Vec<(Instant, u16)>> = HashMap::new();
        for p in &records.presentations {
            if let (Some(user), Some(at)) = (&p.user, p.answered_at) {
                token_by_user
                    .entry(user.clone())
                    .or_default()
                    .push((at, p.status));
            }
        }
        let mut usage_by_key: HashMap<String, Vec<(Instant, u16)>> = HashMap::new();
        for u in &records.usage {
            if let Some(at) = u.answered_at {
                usage_by_key
                    .entry(u.key.clone())
                    .or_default()
                    .push((at, u.status));
            }
        }
        Answers {
            token_by_user,
            usage_by_key,
        }
    }

    /// Whether the fake answered `status` for this call's connection or key while it ran.
    fn answered(&self, call: &Call, user: &str, step: &str, status: u16) -> bool {
        let answers = match (step, &call.key) {
            ("refresh", _) => self.token_by_user.get(user),
            ("usage", Some(key)) => self.usage_by_key.get(key),
            _ => None,
        };
        let from = call
            .started
            .checked_sub(MATCH_SLACK)
            .unwrap_or(call.started);
        let to = call.ended + MATCH_SLACK;
        answers.is_some_and(|a| {
            a.iter()
                .any(|(at, s)| *s == status && *at >= from && *at <= to)
        })
    }
}

/// What judging a call needs besides the call.
pub struct Context<'a> {
    /// `users[i]` is connection i's fake user.
    pub users: &'a [String],
    /// The connections lost by the end.
    pub lost: &'a HashSet<usize>,
    pub answers: &'a Answers,
    pub kills: &'a [Kill],
    /// When the load began, on the monotonic clock and in Unix seconds.
    pub start: Instant,
    pub start_unix: f64,
    /// Per connection, when each token a client was served expires (Unix seconds), by when it
    /// was served.
    pub served: HashMap<usize, Vec<(Instant, i64)>>,
}

impl Context<'_> {
    /// Per connection, the expiry of every token served during the load.
    pub fn served_tokens(calls: &[Call]) -> HashMap<usize, Vec<(Instant, i64)>> {
        let mut served: HashMap<usize, Vec<(Instant, i64)>> = HashMap::new();
        for c in calls {
            if let Some(at) = c.expires_at {
                served.entry(c.connection).or_default().push((c.ended, at));
            }
        }
        served
    }

    /// For a call that got no token: how long the latest token served on its connection before
    /// it still had to live when the call ended (negative: already expired).
    fn valid_left(&self, call: &Call) -> Option<f64> {
        let latest = self
            .served
            .get(&call.connection)?
            .iter()
            .filter(|(served, _)| *served <= call.started)
            .map(|(_, expires)| *expires)
            .max()?;
        let ended = self.start_unix
            + call
                .ended
                .saturating_duration_since(self.start)
                .as_secs_f64();
        Some(latest as f64 - ended)
    }
}

/// Judges the load's calls of `rpc`.
pub fn judge(rpc: Rpc, calls: &[Call], cx: &Context<'_>) -> Availability {
    let mut a = Availability {
        rpc,
        counted: 0,
        served: 0,
        passed_on: 0,
        pending: 0,
        failed: BTreeMap::new(),
        examples: Vec::new(),
    };
    let mut by_key: HashMap<&str, Vec<&Call>> = HashMap::new();
    for call in calls.iter().filter(|c| c.rpc == Rpc::RecordUsage) {
        if let Some(key) = &call.key {
            by_key.entry(key).or_default().push(call);
        }
    }
    let counted = calls.iter().filter(|c| {
        c.rpc == rpc
            && c.phase == Phase::Load
            && !c.replica_down
            && !cx.lost.contains(&c.connection)
    });
    for call in counted {
        a.counted += 1;
        let refusal = match &call.ending {
            Ending::Ok => {
                a.served += 1;
                continue;
            }
            Ending::Refused(r) => r,
            _ => {
                a.fail(call, cx);
                continue;
            }
        };
        let user = &cx.users[call.connection];
        let after_unanswered =
            call.key
                .as_deref()
                .and_then(|k| by_key.get(k))
                .is_some_and(|calls| {
                    calls
                        .iter()
                        .any(|c| c.ended <= call.started && without_answer(c))
                });
        match refusal.reason.as_str() {
            "PROVIDER_UNAVAILABLE" | "PROVIDER_INVALID_RESPONSE"
                if passed_on(call, refusal, user, cx.answers) =>
            {
                a.passed_on += 1
            }
            "USAGE_OUTCOME_UNKNOWN" | "USAGE_IN_PROGRESS" if after_unanswered => a.pending += 1,
            _ => a.fail(call, cx),
        }
    }
    a
}

impl Availability {
    /// Counts a failed call and keeps the first ones as evidence.
    fn fail(&mut self, call: &Call, cx: &Context<'_>) {
        *self.failed.entry(call.ending.label()).or_default() += 1;
        if self.examples.len() < EXAMPLES {
            let left = match cx.valid_left(call) {
                // Positive, the service withheld a token still valid; negative, the latest one the
                // soak saw had expired (the service may have refreshed since, unseen).
                Some(secs) if call.rpc == Rpc::GetAccessToken => format!(
                    "; the latest token the soak was served on this connection had {secs:.1} s to live"
                ),
                _ => String::new(),
            };
            self.examples
                .push(describe(call, cx.kills, cx.start) + &left);
        }
    }
}

/// One call, in seconds since the load began, with the kills before it.
pub fn describe(call: &Call, kills: &[Kill], start: Instant) -> String {
    let t = |i: Instant| i.saturating_duration_since(start).as_secs_f64();
    let before: Vec<String> = kills
        .iter()
        .filter(|k| k.at <= call.ended && k.at + Duration::from_secs(15) >= call.started)
        .map(|k| format!("replica {} at {:.3} s", k.slot, t(k.at)))
        .collect();
    let message = match &call.ending {
        Ending::Refused(r) => format!(" \"{}\"", r.message),
        Ending::Transport(m) => format!(" \"{m}\""),
        _ => String::new(),
    };
    format!(
        "{:?} ({:?} phase) on connection {}{} via replica {} at {:.3} s: {} after {:.3} s{message}; kills within 15 s before: [{}]",
        call.rpc,
        call.phase,
        call.connection,
        call.key
            .as_deref()
            .map(|k| format!(" key {k}"))
            .unwrap_or_default(),
        call.slot,
        t(call.started),
        call.ending.label(),
        call.wall().as_secs_f64(),
        before.join(", "),
    )
}

fn passed_on(call: &Call, refusal: &Refusal, user: &str, answers: &Answers) -> bool {
    let step = refusal.metadata.get("step").map_or("", String::as_str);
    refusal
        .http_status()
        .is_some_and(|status| status >= 500 && answers.answered(call, user, step, status))
}

/// The attempt left the key's outcome open: no answer reached the client, or the provider's
/// answer did not say whether it charged (a 5xx other than 503).
pub fn without_answer(call: &Call) -> bool {
    match &call.ending {
        _ if call.replica_down => true,
        Ending::DeadlineCut | Ending::Transport(_) => true,
        Ending::Refused(r) => {
            r.metadata.get("step").map(String::as_str) == Some("usage")
                && r.http_status().is_some_and(|s| s >= 500 && s != 503)
        }
        Ending::Ok => false,
    }
}

/// Calls (of any phase) that did not get authbroker's answer before their deadline, or ended past
/// it; one line each.
pub fn overruns(calls: &[Call], kills: &[Kill], start: Instant) -> Vec<String> {
    let mut lines: Vec<(Instant, String)> = calls
        .iter()
        .filter(|c| !c.replica_down)
        .filter(|c| {
            matches!(c.ending, Ending::DeadlineCut) || c.wall() > c.deadline + DEADLINE_TOLERANCE
        })
        .map(|c| (c.started, describe(c, kills, start)))
        .collect();
    lines.sort_by_key(|(at, _)| *at);
    lines.into_iter().map(|(_, line)| line).collect()
}

/// Wall-time latency of the load's calls of `rpc` that reached a live replica.
pub fn latency(rpc: Rpc, calls: &[Call], elapsed: Duration) -> Stats {
    let micros = calls
        .iter()
        .filter(|c| c.rpc == rpc && c.phase == Phase::Load && !c.replica_down)
        .map(|c| c.wall().as_micros().min(u128::from(u32::MAX)) as u32)
        .collect();
    Stats::from_latencies(micros, 0, elapsed)
}
