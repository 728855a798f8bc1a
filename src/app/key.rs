//! Loading the sealing key: from config, or in the embedded default from a key
//! file beside the database that is generated (mode 0600) on first start.

use std::{fs, io::Write, path::Path};

use anyhow::Context;

use crate::{
    config::KeySetting,
    crypto::{KeyRing, SealingKey},
};

/// The keys the service seals and opens with.
pub fn load(setting: &KeySetting) -> anyhow::Result<KeyRing> {
    match setting {
        KeySetting::Configured { id, key } => SealingKey::from_base64(id, key.expose())
            .map(KeyRing::single)
            .map_err(|e| {
                anyhow::anyhow!("encryption_key: {e} (expected base64 of 32 random bytes)")
            }),
        KeySetting::Ring { active, keys } => {
            let mut ring = Vec::new();
            for (id, key) in keys {
                ring.push(SealingKey::from_base64(id, key.expose()).map_err(|e| {
                    anyhow::anyhow!(
                        "encryption_keys {id:?}: {e} (expected base64 of 32 random bytes)"
                    )
                })?);
            }
            KeyRing::new(active, ring).map_err(|e| anyhow::anyhow!("encryption_keys: {e}"))
        }
        KeySetting::File { id, path } => {
            if !path.exists() {
                create(path)?;
                tracing::warn!(
                    path = %path.display(),
                    "no encryption key configured: generated one beside the database; back it up, losing it loses every stored token"
                );
            }
            refuse_shared(path)?;
            let text = zeroize::Zeroizing::new(
                fs::read_to_string(path)
                    .with_context(|| format!("cannot read key file {}", path.display()))?,
            );
            SealingKey::from_base64(id, &text)
                .map(KeyRing::single)
                .map_err(|e| anyhow::anyhow!("key file {}: {e}", path.display()))
        }
    }
}

/// The key file was made readable by its owner only: one readable by its
/// group or by others is refused rather than trusted.
fn refuse_shared(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .with_context(|| format!("cannot read key file {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "key file {} is readable by its group or by others (mode {:o}); chmod 600 it, and consider the key exposed",
                path.display(),
                mode & 0o777
            );
        }
    }
    Ok(())
}

fn create(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create key file {}", path.display()))?;
    file.write_all(SealingKey::generate_base64().as_bytes())?;
    file.sync_all()?;
    Ok(())
}
