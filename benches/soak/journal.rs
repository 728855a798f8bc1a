//! What the soak's clients did: every call with its connection, replica, timing and ending, and
//! every usage key with what the service last said about it. The verdict is drawn from this and
//! from what the fake recorded, never from the service's own view.

use std::time::{Duration, Instant};

use crate::{
    client::{Ending, Timed},
    cluster::{Cluster, Pick},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rpc {
    GetAccessToken,
    RecordUsage,
    ResolveUsage,
}

/// When the call was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Under chaos: faults on, replicas killed.
    Load,
    /// Afterwards, faults off and every replica up: settling and checking.
    Check,
}

#[derive(Clone, Debug)]
pub struct Call {
    pub rpc: Rpc,
    pub phase: Phase,
    /// Index into `Connections`.
    pub connection: usize,
    /// The idempotency key, for RecordUsage.
    pub key: Option<String>,
    pub slot: usize,
    pub deadline: Duration,
    pub started: Instant,
    pub ended: Instant,
    pub ending: Ending,
    /// The replica was SIGKILLed while the call was in flight (or before it was sent): the call
    /// never had a live replica to answer it.
    pub replica_down: bool,
    /// For a token served: its `expires_at` (Unix seconds).
    pub expires_at: Option<i64>,
}

impl Call {
    /// Records a finished call to `pick`.
    #[allow(clippy::too_many_arguments)]
    pub fn record<T>(
        cluster: &Cluster,
        pick: &Pick,
        rpc: Rpc,
        phase: Phase,
        connection: usize,
        key: Option<&str>,
        deadline: Duration,
        timed: &Timed<T>,
    ) -> Call {
        let ending = Ending::of(&timed.result);
        // An answer from authbroker came from a live process; anything else on a process that was
        // killed meanwhile is the kill's doing.
        let replica_down =
            !matches!(ending, Ending::Ok | Ending::Refused(_)) && cluster.went_down(pick);
        Call {
            rpc,
            phase,
            connection,
            key: key.map(str::to_owned),
            slot: pick.slot,
            deadline,
            started: timed.started,
            ended: timed.ended,
            ending,
            replica_down,
            expires_at: None,
        }
    }

    pub fn wall(&self) -> Duration {
        self.ended - self.started
    }
}

/// What the service said last about a usage key during the load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// RecordUsage confirmed it (the provider charged).
    Charged,
    /// No definite answer yet (unknown, failed, cut, abandoned after a failure): settled in the
    /// check phase.
    Open,
    /// The connection turned NEEDS_REAUTH before the key was confirmed.
    ConnectionLost,
}

#[derive(Clone, Debug)]
pub struct UsageKey {
    pub key: String,
    pub connection: usize,
    pub state: KeyState,
}

/// Something the service answered that contradicts its documented contract, for the report.
#[derive(Clone, Debug)]
pub struct Surprise(pub String);

/// The soak's record.
#[derive(Default)]
pub struct Journal {
    pub calls: Vec<Call>,
    pub keys: Vec<UsageKey>,
    pub surprises: Vec<Surprise>,
}

impl Journal {
    pub fn absorb(&mut self, other: Journal) {
        self.calls.extend(other.calls);
        self.keys.extend(other.keys);
        self.surprises.extend(other.surprises);
    }
}
