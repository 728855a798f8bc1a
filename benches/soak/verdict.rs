//! The verdict: every figure of the report and every pass criterion, drawn from the clients'
//! journal, the kills and what the fake recorded.

use std::{
    collections::{BTreeMap, HashSet},
    time::{Duration, Instant},
};

use crate::{
    availability::{self, Answers, Availability, Context},
    charges::{self, Charges},
    cluster::Kill,
    connections::Connections,
    finals::FinalToken,
    histories,
    journal::{Journal, Phase, Rpc},
    records::Records,
    representations::{self, Representations},
    settle::Settlement,
    stats::Stats,
};

/// The availability the issue asks for, of each RPC.
pub const AVAILABILITY_TARGET: f64 = 0.999;

/// What the run produced, for the verdict.
pub struct Evidence<'a> {
    pub journal: &'a Journal,
    pub records: &'a Records,
    pub kills: &'a [Kill],
    pub finals: &'a [FinalToken],
    pub connections: &'a Connections,
    pub rejections: &'a [String],
    pub refreshes_accepted: usize,
    pub settlement: Settlement,
    /// When the load began (monotonic, and Unix seconds), and how long it ran.
    pub start: Instant,
    pub start_unix: f64,
    pub elapsed: Duration,
}

pub struct Verdict {
    pub calls: usize,
    pub replica_down: usize,
    pub availability: Vec<Availability>,
    pub latency: Vec<(Rpc, Stats)>,
    pub kills: usize,
    pub kills_mid_refresh: usize,
    pub refreshes_accepted: usize,
    pub refresh_requests: usize,
    pub representations: Representations,
    pub charges: Charges,
    pub overruns: Vec<String>,
    /// Connections lost, by why.
    pub lost: BTreeMap<&'static str, usize>,
    /// Connections that did not end with an accepted token or an explained NEEDS_REAUTH.
    pub broken: Vec<String>,
    pub unknown_outcomes: usize,
    pub settlement: Settlement,
    pub server_errors: usize,
    pub slow_answers: usize,
    pub unanswered: usize,
    pub unexpected_rejections: BTreeMap<String, usize>,
    pub surprises: Vec<String>,
    /// For usage keys with a failed or overrun call: every call of the key and every answer the
    /// fake gave for it, in order.
    pub key_histories: Vec<String>,
    /// Every pass criterion that failed, as a sentence.
    pub failed: Vec<String>,
}

/// Why a connection ended NEEDS_REAUTH.
const LOST_TO_KILL: &str = "a kill interrupted a rotating refresh (reason names it)";
const PROVIDER_REFUSED: &str = "the provider refused a token it never spent";
const KILL_NOT_NAMED: &str = "lost to a kill, reason does not name the interruption";
const INTERRUPTION_NOT_SHOWN: &str = "names an interruption the provider's records do not show";
const UNEXPLAINED: &str = "the provider refused a token authbroker had spent before";

pub fn judge(e: Evidence<'_>) -> Verdict {
    let calls = &e.journal.calls;
    let users: Vec<String> = (0..e.connections.len())
        .map(|i| e.connections.get(i).user.clone())
        .collect();
    let representations = representations::judge(&e.records.presentations, e.kills, e.start);
    let (lost_set, lost, broken) = final_states(&e, &users, &representations);
    let answers = Answers::index(e.records);
    let cx = Context {
        users: &users,
        lost: &lost_set,
        answers: &answers,
        kills: e.kills,
        start: e.start,
        start_unix: e.start_unix,
        served: Context::served_tokens(calls),
    };
    let availability: Vec<Availability> = [Rpc::GetAccessToken, Rpc::RecordUsage]
        .into_iter()
        .map(|rpc| availability::judge(rpc, calls, &cx))
        .collect();
    let load = || calls.iter().filter(|c| c.phase == Phase::Load);
    let key_histories = histories::of_failed_keys(&e, &lost_set);
    let mut v = Verdict {
        calls: load().count(),
        replica_down: load().filter(|c| c.replica_down).count(),
        latency: [Rpc::GetAccessToken, Rpc::RecordUsage]
            .into_iter()
            .map(|rpc| (rpc, availability::latency(rpc, calls, e.elapsed)))
            .collect(),
        availability,
        kills: e.kills.len(),
        kills_mid_refresh: representations::kills_mid_refresh(&e.records.presentations, e.kills),
        refreshes_accepted: e.refreshes_accepted,
        refresh_requests: e.records.presentations.len(),
        charges: charges::judge(e.records, calls, &e.journal.keys),
        representations,
        overruns: availability::overruns(calls, e.kills, e.start),
        lost,
        broken,
        unknown_outcomes: load()
            .filter(|c| c.ending.reason() == Some("USAGE_OUTCOME_UNKNOWN"))
            .count(),
        settlement: e.settlement,
        server_errors: e.records.server_errors,
        slow_answers: e.records.slow,
        unanswered: e.records.unanswered,
        unexpected_rejections: unexpected(e.rejections),
        surprises: e.journal.surprises.iter().map(|s| s.0.clone()).collect(),
        key_histories,
        failed: Vec::new(),
    };
    v.failed = criteria(&v);
    v
}

/// The final check of every connection: the set lost, the count by reason, and the broken ones.
/// A NEEDS_REAUTH is fine when its reason names the interruption (authbroker's words, README
/// "Windows that remain") and the fake shows a kill-explained lost rotation for that user, or when
/// the provider refused a token it had never spent.
fn final_states(
    e: &Evidence<'_>,
    users: &[String],
    r: &Representations,
) -> (HashSet<usize>, BTreeMap<&'static str, usize>, Vec<String>) {
    let mut lost_set = HashSet::new();
    let mut lost = BTreeMap::new();
    let mut broken = Vec::new();
    for (i, last) in e.finals.iter().enumerate() {
        let user = &users[i];
        let why = match last {
            FinalToken::Accepted if e.connections.seen_lost(i) => {
                broken.push(format!(
                    "{user}: NEEDS_REAUTH during the load, a token after it"
                ));
                continue;
            }
            FinalToken::Accepted => continue,
            FinalToken::NotAccepted(why) | FinalToken::Failed(why) => {
                broken.push(format!("{user}: {why}"));
                continue;
            }
            FinalToken::NeedsReauth(message) => {
                let names_kill = message.contains("interrupted");
                let kill_shown = r.lost_rotation_users.contains(user);
                match (names_kill, kill_shown) {
                    (true, true) => LOST_TO_KILL,
                    (false, true) => KILL_NOT_NAMED,
                    (true, false) => INTERRUPTION_NOT_SHOWN,
                    (false, false) if r.refused_unspent_users.contains(user) => PROVIDER_REFUSED,
                    (false, false) => UNEXPLAINED,
                }
            }
        };
        lost_set.insert(i);
        *lost.entry(why).or_default() += 1;
        if why != LOST_TO_KILL && why != PROVIDER_REFUSED {
            let FinalToken::NeedsReauth(message) = last else {
                unreachable!("only NEEDS_REAUTH gets here")
            };
            broken.push(format!("{user}: {why}: {message}"));
        }
    }
    (lost_set, lost, broken)
}

/// The fake's rejections other than the two the chaos explains: a refresh token rotated out (judged
/// with the re-presentations) and an access token past its life (authbroker refreshes and retries).
fn unexpected(rejections: &[String]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in rejections {
        if !(r.contains("revoked or rotated out") || r.contains("access token expired")) {
            *out.entry(r.clone()).or_default() += 1;
        }
    }
    out
}

fn criteria(v: &Verdict) -> Vec<String> {
    let mut failed = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            failed.push(what);
        }
    };
    for a in &v.availability {
        check(
            a.ratio() >= AVAILABILITY_TARGET,
            format!(
                "{:?} availability {:.3}% < {:.1}% ({} of {} calls failed: {:?})",
                a.rpc,
                a.ratio() * 100.0,
                AVAILABILITY_TARGET * 100.0,
                a.failures(),
                a.counted,
                a.failed
            ),
        );
    }
    let r = &v.representations;
    check(
        r.unexplained.is_empty(),
        format!(
            "{} refresh token re-presentations no kill explains",
            r.unexplained.len()
        ),
    );
    let c = &v.charges;
    check(
        c.double.is_empty(),
        format!("{} keys charged twice", c.double.len()),
    );
    check(
        c.charged_though_failed.is_empty(),
        format!(
            "{} answers said \"not charged\" for a charged key",
            c.charged_though_failed.len()
        ),
    );
    check(
        c.mismatched.is_empty() && c.unsettled == 0,
        format!(
            "{} settled keys contradict the provider's charges, {} keys unsettled",
            c.mismatched.len(),
            c.unsettled
        ),
    );
    check(
        v.overruns.is_empty(),
        format!("{} calls overran their deadline", v.overruns.len()),
    );
    check(
        v.broken.is_empty(),
        format!(
            "{} connections ended neither with a token the provider accepts nor an explained NEEDS_REAUTH",
            v.broken.len()
        ),
    );
    check(
        v.unexpected_rejections.is_empty(),
        format!(
            "the strict fake rejected requests: {:?}",
            v.unexpected_rejections
        ),
    );
    check(
        v.surprises.is_empty(),
        format!(
            "{} answers contradicted the documented contract",
            v.surprises.len()
        ),
    );
    // Without faults and kills the soak would prove nothing.
    check(
        v.kills > 0 && v.server_errors > 0 && v.slow_answers > 0,
        format!(
            "the chaos did not happen: {} kills, {} 5xx answers, {} slow answers",
            v.kills, v.server_errors, v.slow_answers
        ),
    );
    failed
}
