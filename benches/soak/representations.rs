//! Refresh tokens presented more than once, judged against the kills. A later presentation of a
//! token is harmless after an earlier one the provider answered without spending it (a 5xx, a
//! refusal) and that had ended before; after a presentation the provider did or may have spent, it
//! is explained only by a SIGKILL of the replica that sent that presentation, landing between its
//! arrival at the provider and its answer plus `KILL_MARGIN` (the time a replica takes to store what
//! it was answered). Anything else is authbroker spending a token twice on its own.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use crate::{cluster::Kill, records::Presentation};

/// How long after the provider's answer a kill still explains a lost rotation.
pub const KILL_MARGIN: Duration = Duration::from_millis(500);

#[derive(Default, Debug)]
pub struct Representations {
    /// Presentations of a token that had been presented before.
    pub total: usize,
    /// ...after earlier presentations that were answered without spending it.
    pub after_unspent: usize,
    /// ...explained by a kill of the sending replica.
    pub after_kill: usize,
    /// ...explained by nothing: one line each, for the report.
    pub unexplained: Vec<String>,
    /// Users whose (maybe) spent refresh token was presented again after a kill: their rotation
    /// was lost.
    pub lost_rotation_users: HashSet<String>,
    /// Users the provider refused a token it had never spent (its own decision).
    pub refused_unspent_users: HashSet<String>,
}

/// Whether slot `slot` was killed within `[from, to]`.
pub fn killed(kills: &[Kill], slot: Option<usize>, from: Instant, to: Instant) -> bool {
    kills
        .iter()
        .any(|k| Some(k.slot) == slot && k.at <= to && k.reaped >= from)
}

pub fn judge(presentations: &[Presentation], kills: &[Kill], start: Instant) -> Representations {
    let mut by_token: HashMap<&str, Vec<&Presentation>> = HashMap::new();
    for p in presentations {
        by_token.entry(&p.refresh_token).or_default().push(p);
    }
    let mut out = Representations::default();
    for (_, mut seen) in by_token {
        seen.sort_by_key(|p| p.received_at);
        if let Some(first) = seen.first()
            && first.status == 400
            && let Some(user) = &first.user
        {
            out.refused_unspent_users.insert(user.clone());
        }
        for j in 1..seen.len() {
            let later = seen[j];
            out.total += 1;
            let mut needed_kill = false;
            let mut unexplained = None;
            for earlier in &seen[..j] {
                let answered = earlier.answered_at;
                let unspent_before =
                    !earlier.maybe_spent() && answered.is_some_and(|at| at <= later.received_at);
                if unspent_before {
                    continue;
                }
                let window_end = answered.unwrap_or(later.received_at) + KILL_MARGIN;
                if killed(kills, earlier.slot, earlier.received_at, window_end) {
                    needed_kill = true;
                    if earlier.maybe_spent()
                        && let Some(user) = &earlier.user
                    {
                        out.lost_rotation_users.insert(user.clone());
                    }
                } else {
                    unexplained = Some(describe(earlier, later, kills, start));
                }
            }
            match unexplained {
                Some(line) => out.unexplained.push(line),
                None if needed_kill => out.after_kill += 1,
                None => out.after_unspent += 1,
            }
        }
    }
    out.unexplained.sort();
    out
}

/// Kills that landed while a refresh sent by the killed replica was at the provider.
pub fn kills_mid_refresh(presentations: &[Presentation], kills: &[Kill]) -> usize {
    kills
        .iter()
        .filter(|k| {
            presentations.iter().any(|p| {
                p.slot == Some(k.slot)
                    && p.received_at <= k.reaped
                    && p.answered_at.is_none_or(|at| at + KILL_MARGIN >= k.at)
            })
        })
        .count()
}

/// One line of evidence, in seconds since the load began; no token.
fn describe(
    earlier: &Presentation,
    later: &Presentation,
    kills: &[Kill],
    start: Instant,
) -> String {
    let t = |i: Instant| i.saturating_duration_since(start).as_secs_f64();
    let nearest = kills
        .iter()
        .filter(|k| Some(k.slot) == earlier.slot)
        .map(|k| {
            let gap = if k.at >= earlier.received_at {
                (k.at - earlier.received_at).as_secs_f64()
            } else {
                -(earlier.received_at - k.at).as_secs_f64()
            };
            (gap.abs(), gap)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map_or("none".to_owned(), |(_, gap)| format!("{gap:+.3} s"));
    format!(
        "user {}: presented by replica {:?} at {:.3} s (answered {} at {}), again by replica {:?} at {:.3} s (answered {}); nearest kill of replica {:?} from the first arrival: {nearest}",
        earlier.user.as_deref().unwrap_or("?"),
        earlier.slot,
        t(earlier.received_at),
        earlier.status,
        earlier
            .answered_at
            .map_or("never".to_owned(), |at| format!("{:.3} s", t(at))),
        later.slot,
        t(later.received_at),
        later.status,
        earlier.slot,
    )
}
