//! The chaos driver: every `KILL_EVERY` one replica, round-robin, is SIGKILLed and a new process is
//! started in its place, until the load ends.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{task::JoinHandle, time::MissedTickBehavior};

use crate::cluster::{Cluster, REPLICAS};

pub const KILL_EVERY: Duration = Duration::from_secs(5);

/// Starts killing; the task ends (every replica up again) at the first tick past `until`.
pub fn start(cluster: Arc<Cluster>, until: Instant) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at((Instant::now() + KILL_EVERY).into(), KILL_EVERY);
        // A restart that overran a tick does not bring on two kills in a row.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        for n in 0.. {
            ticks.tick().await;
            if Instant::now() >= until {
                break;
            }
            cluster.kill_and_restart(n % REPLICAS).await;
        }
    })
}
