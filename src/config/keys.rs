//! `[[encryption_keys]]` and `active_encryption_key_id`: the key ring. New
//! values are sealed with the active key and any key in the ring opens, so a
//! key is rotated by adding a new one, making it active, re-sealing, then
//! removing the old one. The single `encryption_key` is a ring of one.

use std::{collections::BTreeMap, path::Path};

use serde::Deserialize;

use super::{KeySetting, resolve_secret, valid_name};

/// One `[[encryption_keys]]` entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKey {
    id: String,
    key: Option<String>,
    key_env: Option<String>,
    key_file: Option<String>,
}

/// The ring, if one is configured.
pub(super) fn ring(
    keys: Vec<RawKey>,
    active: Option<String>,
    env: &BTreeMap<String, String>,
) -> Result<Option<KeySetting>, String> {
    if keys.is_empty() {
        return match active {
            Some(_) => Err("active_encryption_key_id: needs [[encryption_keys]]".into()),
            None => Ok(None),
        };
    }
    let mut ring = Vec::new();
    for (i, raw) in keys.into_iter().enumerate() {
        let field = format!("encryption_keys[{i}]");
        if !valid_name(&raw.id, 64) || raw.id.contains('.') {
            return Err(format!(
                "{field}.id: 1 to 64 characters of a-z A-Z 0-9 _ - (no dots)"
            ));
        }
        if ring.iter().any(|(id, _)| *id == raw.id) {
            return Err(format!("{field}.id: {:?} is in the ring twice", raw.id));
        }
        if let Some(path) = &raw.key_file {
            refuse_world_readable(&format!("{field}.key_file"), Path::new(path))?;
        }
        let key = resolve_secret(
            &format!("{field}.key"),
            raw.key,
            raw.key_env,
            raw.key_file,
            env,
        )?
        .ok_or_else(|| format!("{field}.key: one of key, key_env or key_file is required"))?;
        ring.push((raw.id, key));
    }
    let active = match active {
        Some(active) => active,
        None if ring.len() == 1 => ring[0].0.clone(),
        None => {
            return Err(
                "active_encryption_key_id: required when the ring holds several keys".into(),
            );
        }
    };
    if !ring.iter().any(|(id, _)| *id == active) {
        return Err(format!(
            "active_encryption_key_id: {active:?} is not an id in [[encryption_keys]]"
        ));
    }
    Ok(Some(KeySetting::Ring { active, keys: ring }))
}

/// A key file anyone on the machine can read is refused. (A mounted
/// Kubernetes secret is group-readable for the pod's own group: allowed.)
pub(super) fn refuse_world_readable(field: &str, path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o004 != 0
        {
            return Err(format!(
                "{field}: {} is readable by every user (mode {:o}); make it readable by its owner only (chmod 600)",
                path.display(),
                meta.permissions().mode() & 0o777
            ));
        }
    }
    Ok(())
}
