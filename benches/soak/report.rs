//! The report: the figures as a markdown table, the evidence behind every failed criterion, and the
//! "Chaos soak" section of BENCHMARKS.md. Nothing here carries a token.

use std::fmt::Write as _;

use crate::{Settings, journal::Rpc, verdict::Verdict};

/// Lines of evidence shown per kind.
const EVIDENCE_LINES: usize = 20;

pub fn table(s: &Settings, v: &Verdict) -> String {
    let mut out = format!(
        "{} connections, {} s of load; 3 replicas of the release binary on one PostgreSQL database, \
         one SIGKILLed and restarted every {} s (round-robin); the provider answers {:.0}% of token and \
         usage requests with a 5xx and {:.0}% 1-3 s late; tokens live {} s; every call has a {} s deadline.\n\n\
         | figure | value |\n|---|---|\n",
        s.connections,
        s.duration.as_secs(),
        crate::kills::KILL_EVERY.as_secs(),
        crate::CHAOS_SERVER_ERROR * 100.0,
        crate::CHAOS_SLOW * 100.0,
        crate::TOKEN_LIFETIME_SECS,
        crate::calls::DEADLINE.as_secs(),
    );
    let mut row = |figure: &str, value: String| {
        let _ = writeln!(out, "| {figure} | {value} |");
    };
    row(
        "calls under chaos (to a replica that was down)",
        format!("{} ({})", v.calls, v.replica_down),
    );
    for a in &v.availability {
        let detail = match a.rpc {
            Rpc::RecordUsage => format!(
                "{} confirmed, {} provider failures passed on, {} outcome unknown / in progress after an unanswered attempt",
                a.served, a.passed_on, a.pending
            ),
            _ => format!(
                "{} served, {} provider failures passed on",
                a.served, a.passed_on
            ),
        };
        let failed = if a.failed.is_empty() {
            String::new()
        } else {
            format!("; failed: {:?}", a.failed)
        };
        row(
            &format!("{:?} availability", a.rpc),
            format!(
                "**{:.3}%** of {} ({detail}{failed})",
                a.ratio() * 100.0,
                a.counted
            ),
        );
    }
    for (rpc, stats) in &v.latency {
        row(
            &format!("{rpc:?} latency p50 / p99 / max"),
            format!(
                "{:.1} / {:.1} / {:.1} ms",
                stats.quantile_us(0.5) / 1000.0,
                stats.quantile_us(0.99) / 1000.0,
                stats.quantile_us(1.0) / 1000.0
            ),
        );
    }
    row(
        "kills (landing while that replica's refresh was at the provider)",
        format!("{} ({})", v.kills, v.kills_mid_refresh),
    );
    row(
        "refreshes the provider accepted (refresh requests)",
        format!("{} ({})", v.refreshes_accepted, v.refresh_requests),
    );
    let r = &v.representations;
    row(
        "refresh tokens presented again: after an unspent answer / after a kill / **unexplained**",
        format!(
            "{} / {} / **{}**",
            r.after_unspent,
            r.after_kill,
            r.unexplained.len()
        ),
    );
    let c = &v.charges;
    row(
        "usage charged / **charged twice** / **charged though reported failed**",
        format!(
            "{} / **{}** / **{}**",
            c.charged,
            c.double.len(),
            c.charged_though_failed.len()
        ),
    );
    row("**deadline overruns**", format!("**{}**", v.overruns.len()));
    let lost: usize = v.lost.values().sum();
    row(
        "connections lost (by reason)",
        format!("{lost} {:?}", v.lost),
    );
    let st = &v.settlement;
    row(
        "USAGE_OUTCOME_UNKNOWN answers; settled charged / not charged",
        format!(
            "{}; {} / {}",
            v.unknown_outcomes, st.unknown_charged, st.unknown_not_charged
        ),
    );
    row(
        "open keys settled afterwards: replayed / reported again / connection lost",
        format!("{} / {} / {}", st.replayed, st.reported, st.lost),
    );
    row(
        "provider chaos: 5xx answers / late answers (requests dropped with their replica)",
        format!(
            "{} / {} ({})",
            v.server_errors, v.slow_answers, v.unanswered
        ),
    );
    out
}

/// The evidence behind each failed criterion.
pub fn evidence(v: &Verdict) -> String {
    let mut out = String::new();
    let mut section = |title: &str, lines: &[String]| {
        if lines.is_empty() {
            return;
        }
        let _ = writeln!(out, "\n{title} ({}):", lines.len());
        for line in lines.iter().take(EVIDENCE_LINES) {
            let _ = writeln!(out, "  - {line}");
        }
    };
    section(
        "Refresh tokens presented again with no kill to explain it",
        &v.representations.unexplained,
    );
    section("Keys charged twice", &v.charges.double);
    section(
        "\"Not charged\" answers for charged keys",
        &v.charges.charged_though_failed,
    );
    section("Keys contradicting their charges", &v.charges.mismatched);
    section("Deadline overruns", &v.overruns);
    for a in &v.availability {
        section(&format!("Failed {:?} calls", a.rpc), &a.examples);
    }
    section("Connections not ending as they may", &v.broken);
    section("Answers contradicting the contract", &v.surprises);
    section(
        "Usage keys with a failed call, call by call",
        &v.key_histories,
    );
    out
}

/// Replaces (or appends) the "Chaos soak" section of BENCHMARKS.md.
pub fn write(s: &Settings, v: &Verdict) {
    let root = env!("CARGO_MANIFEST_DIR");
    let path = format!("{root}/BENCHMARKS.md");
    let (start, end) = ("<!-- soak:start -->", "<!-- soak:end -->");
    let verdict = if v.failed.is_empty() {
        "Every pass criterion met.".to_owned()
    } else {
        format!("Failed: {}.", v.failed.join("; "))
    };
    let section = format!(
        "Machine: {}. `cargo bench --bench soak -- --write`.\n\n{}\n{verdict}\n",
        crate::server::machine(),
        table(s, v)
    );
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let updated = match (doc.find(start), doc.find(end)) {
        (Some(a), Some(b)) if a < b => format!("{}{start}\n{section}{}", &doc[..a], &doc[b..]),
        _ => format!("{doc}\n## Chaos soak\n\n{start}\n{section}{end}\n"),
    };
    std::fs::write(&path, updated).expect("write BENCHMARKS.md");
    println!("wrote the Chaos soak section of BENCHMARKS.md");
}
