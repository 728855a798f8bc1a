//! Usage, judged by the fake's ledger of charges (per key, whether or not the answer left): no key charged
//! twice; no key charged before an answer in which authbroker said nothing had been charged; and
//! once every key is settled, each confirmed key charged exactly once and each key of a lost
//! connection not at all.

use std::collections::HashMap;

use crate::{
    client::Ending,
    journal::{Call, KeyState, Rpc, UsageKey},
    load::NEEDS_REAUTH,
    records::Records,
};

#[derive(Default, Debug)]
pub struct Charges {
    /// Charges in the fake's ledger.
    pub charged: usize,
    /// Keys charged more than once: key and count.
    pub double: Vec<String>,
    /// Answers that said "not charged" for a key the fake had already charged.
    pub charged_though_failed: Vec<String>,
    /// Settled keys whose charge count contradicts what authbroker finally said.
    pub mismatched: Vec<String>,
    /// Keys the check phase could not settle.
    pub unsettled: usize,
}

pub fn judge(records: &Records, calls: &[Call], keys: &[UsageKey]) -> Charges {
    let by_key = records.charges_by_key();
    let mut out = Charges {
        charged: by_key.values().sum(),
        ..Charges::default()
    };
    for (key, n) in &by_key {
        if *n > 1 {
            out.double.push(format!("{key}: charged {n} times"));
        }
    }
    let mut first_charge: HashMap<&str, std::time::Instant> = HashMap::new();
    for (key, at) in &records.charges {
        let first = first_charge.entry(key).or_insert(*at);
        *first = (*first).min(*at);
    }
    for call in calls.iter().filter(|c| c.rpc == Rpc::RecordUsage) {
        let Some(key) = call.key.as_deref() else {
            continue;
        };
        if says_not_charged(&call.ending)
            && first_charge.get(key).is_some_and(|at| *at < call.ended)
        {
            out.charged_though_failed.push(format!(
                "{key}: answered {} ({:?} phase) after the fake had charged it",
                call.ending.label(),
                call.phase
            ));
        }
    }
    for k in keys {
        let n = by_key.get(k.key.as_str()).copied().unwrap_or(0);
        match (&k.state, n) {
            (KeyState::Charged, 1) | (KeyState::ConnectionLost, 0) => {}
            (KeyState::Open, _) => out.unsettled += 1,
            (state, n) => out.mismatched.push(format!(
                "{}: authbroker's last word {state:?}, charged {n} times",
                k.key
            )),
        }
    }
    out.double.sort();
    out.mismatched.sort();
    out
}

/// An answer in which authbroker said the usage was not charged: the connection could not report,
/// the token refresh before it failed, or the provider answered a failure that proves it did
/// nothing (503) or was never reached.
fn says_not_charged(ending: &Ending) -> bool {
    let Ending::Refused(r) = ending else {
        return false;
    };
    let step = r.metadata.get("step").map(String::as_str);
    match r.reason.as_str() {
        NEEDS_REAUTH => true,
        "PROVIDER_UNAVAILABLE" | "PROVIDER_INVALID_RESPONSE" => match step {
            Some("refresh") => true,
            Some("usage") => r.http_status().is_none_or(|s| s == 503),
            _ => false,
        },
        _ => false,
    }
}
