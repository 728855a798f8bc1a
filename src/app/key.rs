//! Loading the sealing key: from config, or in the embedded default from a key
//! file beside the database that is generated (mode 0600) on first start.

use std::{fs, io::Write, path::Path};

use anyhow::Context;

use crate::{config::KeySetting, crypto::SealingKey};

/// The key the service seals with.
pub fn load(setting: &KeySetting) -> anyhow::Result<SealingKey> {
    match setting {
        KeySetting::Configured { id, key } => {
            SealingKey::from_base64(id, key.expose()).map_err(|e| {
                anyhow::anyhow!("encryption_key: {e} (expected base64 of 32 random bytes)")
            })
        }
        KeySetting::File { id, path } => {
            if !path.exists() {
                create(path)?;
                tracing::warn!(
                    path = %path.display(),
                    "no encryption key configured: generated one beside the database; back it up, losing it loses every stored token"
                );
            }
            let text = fs::read_to_string(path)
                .with_context(|| format!("cannot read key file {}", path.display()))?;
            SealingKey::from_base64(id, &text)
                .map_err(|e| anyhow::anyhow!("key file {}: {e}", path.display()))
        }
    }
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
