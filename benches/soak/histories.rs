//! The story of a usage key, for the evidence: every call made with it, every request the fake got
//! for it and every charge, and the kills around them, in time order.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use crate::{
    client::Ending,
    journal::{Call, Rpc},
    verdict::Evidence,
};

/// Answers a RecordUsage may give under the soak's faults; any other is worth a story.
const EXPECTED: [&str; 5] = [
    "PROVIDER_UNAVAILABLE",
    "PROVIDER_INVALID_RESPONSE",
    "USAGE_OUTCOME_UNKNOWN",
    "USAGE_IN_PROGRESS",
    "CONNECTION_NEEDS_REAUTH",
];

/// Keys (at most `HISTORIES`) on connections not lost with a RecordUsage call that a live replica
/// did not answer in time, or answered with an unexpected error: their story.
pub fn of_failed_keys(e: &Evidence<'_>, lost: &HashSet<usize>) -> Vec<String> {
    const HISTORIES: usize = 12;
    let t = |i: Instant| i.saturating_duration_since(e.start).as_secs_f64();
    let bad = |c: &&Call| {
        let failed = match &c.ending {
            Ending::Ok => false,
            Ending::Refused(r) => !EXPECTED.contains(&r.reason.as_str()),
            Ending::DeadlineCut | Ending::Transport(_) => true,
        };
        c.rpc == Rpc::RecordUsage && failed && !c.replica_down && !lost.contains(&c.connection)
    };
    let mut keys: Vec<&str> = e
        .journal
        .calls
        .iter()
        .filter(bad)
        .filter_map(|c| c.key.as_deref())
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .take(HISTORIES)
        .map(|key| {
            let mut events: Vec<(Instant, String)> = e
                .journal
                .calls
                .iter()
                .filter(|c| c.key.as_deref() == Some(key))
                .map(|c| {
                    let down = if c.replica_down {
                        " (replica down)"
                    } else {
                        ""
                    };
                    let line = format!(
                        "{:.3}-{:.3} s {:?} via replica {}: {}{down}",
                        t(c.started),
                        t(c.ended),
                        c.rpc,
                        c.slot,
                        c.ending.label()
                    );
                    (c.started, line)
                })
                .collect();
            events.extend(
                e.records
                    .charges
                    .iter()
                    .filter(|(k, _)| k == key)
                    .map(|(_, at)| (*at, format!("{:.3} s provider charged it", t(*at)))),
            );
            events.extend(e.records.usage.iter().filter(|u| u.key == key).map(|u| {
                let answered = u
                    .answered_at
                    .map_or("never".into(), |at| format!("{:.3} s", t(at)));
                (
                    u.received_at,
                    format!(
                        "{:.3} s provider got it, answered {} at {answered}",
                        t(u.received_at),
                        u.status
                    ),
                )
            }));
            events.extend(
                e.kills
                    .iter()
                    .filter_map(|k| {
                        let first = events.first()?.0;
                        (k.at + Duration::from_secs(10) >= first
                            && k.at <= first + Duration::from_secs(15))
                        .then(|| (k.at, format!("{:.3} s replica {} killed", t(k.at), k.slot)))
                    })
                    .collect::<Vec<_>>(),
            );
            events.sort_by_key(|(at, _)| *at);
            let story: Vec<String> = events.into_iter().map(|(_, line)| line).collect();
            format!("{key}: {}", story.join("; "))
        })
        .collect()
}
