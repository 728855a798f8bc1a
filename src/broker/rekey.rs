//! Key rotation: at start-up, proof that the ring opens what is stored; and
//! `authbroker reseal`, which re-seals every secret still under an older key
//! with the active one, so that key can leave the ring. Safe while replicas
//! serve (see `store::keys`) and resumable: a second run picks up whatever
//! the first left.

use anyhow::Context;
use sea_orm::DatabaseConnection;

use super::vault::Vault;
use crate::{crypto::KeyRing, store::keys};

/// Connections re-sealed per batch.
const BATCH: u64 = 500;
/// Rows opened per key id at start-up.
const SAMPLE: u64 = 3;

/// Refuses to start when stored tokens are sealed under a key the ring
/// lacks, or under a key id whose material in the ring differs.
pub(crate) async fn check_stored(db: &DatabaseConnection, ring: &KeyRing) -> anyhow::Result<()> {
    let in_use = keys::key_ids_in_use(db).await?;
    let missing: Vec<&String> = in_use.iter().filter(|id| !ring.has(id)).collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "stored tokens are sealed under key id(s) {missing:?}, which the key ring lacks: add them to \
             [[encryption_keys]] (or restore the key they were sealed with), then run `authbroker reseal` before removing them"
        );
    }
    for id in &in_use {
        for (row, sealed) in keys::sample(db, id, SAMPLE).await? {
            Vault::open_access_row(ring, &row, &sealed).map_err(|_| {
                anyhow::anyhow!(
                    "the key ring's key {id:?} does not open the tokens stored under that id: it is not the key that sealed them"
                )
            })?;
        }
    }
    Ok(())
}

/// Where a re-seal stands.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Progress {
    /// Connections re-sealed.
    pub(crate) resealed: u64,
    /// Connections that changed while being re-sealed (a refresh stored new
    /// tokens, sealed under the active key already, or a revoke).
    pub(crate) skipped: u64,
    /// Connections under an older key when the run began.
    pub(crate) total: u64,
    /// Pending BeginAuth states re-sealed.
    pub(crate) states: u64,
}

/// Re-seals everything under the active key, reporting after each batch.
pub(crate) async fn reseal(
    db: &DatabaseConnection,
    ring: &KeyRing,
    mut report: impl FnMut(Progress),
) -> anyhow::Result<Progress> {
    let active = ring.active().id().to_owned();
    let mut progress = Progress {
        total: keys::count_stale(db, &active).await?,
        ..Progress::default()
    };
    report(progress);
    let mut after = String::new();
    loop {
        let batch = keys::stale_connections(db, &active, &after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.id.clone();
        for stale in &batch {
            let (access, refresh) = Vault::reseal_connection(ring, stale)
                .with_context(|| format!("re-sealing connection {}", stale.id))?;
            if keys::write_resealed(db, stale, &active, access, refresh).await? {
                progress.resealed += 1;
            } else {
                progress.skipped += 1;
            }
        }
        report(progress);
    }
    for (state_hash, sealed) in keys::stale_states(db, &active).await? {
        let fresh = Vault::reseal_verifier(ring, &state_hash, &sealed)
            .with_context(|| format!("re-sealing a pending state ({state_hash})"))?;
        keys::write_resealed_state(db, &state_hash, &sealed, fresh).await?;
        progress.states += 1;
    }
    report(progress);
    Ok(progress)
}
