//! Secrets in config come inline, from a named environment variable, or from
//! a file (a mounted Kubernetes secret). Exactly one source may be given.

use std::collections::BTreeMap;

use crate::secret::Secret;

/// Resolves `<name>`, `<name>_env` and `<name>_file` to at most one secret.
pub(super) fn resolve_secret(
    name: &str,
    inline: Option<String>,
    env_var: Option<String>,
    file: Option<String>,
    env: &BTreeMap<String, String>,
) -> Result<Option<Secret>, String> {
    let given = [inline.is_some(), env_var.is_some(), file.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(format!(
            "{name}: give only one of {name}, {name}_env and {name}_file"
        ));
    }
    let value = if let Some(value) = inline {
        value
    } else if let Some(var) = env_var {
        env.get(&var)
            .cloned()
            .ok_or_else(|| format!("{name}_env: environment variable {var} is not set"))?
    } else if let Some(path) = file {
        std::fs::read_to_string(&path)
            .map_err(|e| format!("{name}_file: cannot read {path}: {}", e.kind()))?
            // Mounted secrets often end with a newline that is not part of the value.
            .trim_end_matches(['\n', '\r'])
            .to_owned()
    } else {
        return Ok(None);
    };
    if value.is_empty() {
        return Err(format!("{name}: is empty"));
    }
    Ok(Some(Secret::new(value)))
}
