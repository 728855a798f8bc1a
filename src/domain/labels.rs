//! Labels: a caller's own attributes of a connection (workspace, plan), in
//! Kubernetes label syntax so they read the same everywhere in a cluster.
//! Stored as a JSON object; never secrets (they are logged and listed).

use std::collections::BTreeMap;

use super::ParseError;

/// Most labels on one connection.
pub(crate) const MAX_LABELS: usize = 16;
/// Longest label name (after any prefix).
const MAX_NAME: usize = 63;
/// Longest prefix (a DNS subdomain).
const MAX_PREFIX: usize = 253;
/// Longest value.
const MAX_VALUE: usize = 256;

/// A connection's labels, ordered by key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Labels(BTreeMap<String, String>);

impl Labels {
    /// Parses labels from a request: at most 16; each key `[prefix/]name`
    /// with a name of 1 to 63 of `A-Z a-z 0-9 - _ .` starting and ending
    /// alphanumeric and a DNS-subdomain prefix; each value at most 256
    /// characters without control characters. The error names the key.
    pub(crate) fn parse(
        labels: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ParseError> {
        let map: BTreeMap<String, String> = labels.into_iter().collect();
        if map.len() > MAX_LABELS {
            return Err(ParseError::new(format!("at most {MAX_LABELS} labels")));
        }
        for (key, value) in &map {
            check_key(key).map_err(|e| ParseError::new(format!("key {key:?}: {e}")))?;
            if value.chars().count() > MAX_VALUE || value.chars().any(char::is_control) {
                return Err(ParseError::new(format!(
                    "value of {key:?}: at most {MAX_VALUE} characters without control characters"
                )));
            }
        }
        Ok(Self(map))
    }

    /// From the stored JSON; an unreadable value reads as no labels.
    pub(crate) fn from_stored(text: &str) -> Self {
        Self(serde_json::from_str(text).unwrap_or_default())
    }

    /// The stored JSON object.
    pub(crate) fn to_stored(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every label of `wanted` is among these.
    pub(crate) fn contains_all(&self, wanted: &Labels) -> bool {
        wanted.0.iter().all(|(k, v)| self.0.get(k) == Some(v))
    }

    /// Into the map.
    pub(crate) fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }
}

fn check_key(key: &str) -> Result<(), &'static str> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if name.is_empty()
        || name.len() > MAX_NAME
        || !alnum(name.chars().next())
        || !alnum(name.chars().last())
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(
            "the name is 1 to 63 of A-Z a-z 0-9 - _ ., beginning and ending with a letter or digit",
        );
    }
    if let Some(prefix) = prefix {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if prefix.len() > MAX_PREFIX || !prefix.split('.').all(label_ok) {
            return Err("the prefix is a DNS subdomain (lower case, at most 253 characters)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Labels, ParseError> {
        Labels::parse(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn kubernetes_syntax() {
        let ok =
            parse(&[("workspace", "w-1"), ("example.com/plan", "pro"), ("a", "")]).expect("valid");
        assert_eq!(Labels::from_stored(&ok.to_stored()), ok);
        for bad in [
            "",
            "-a",
            "a-",
            "a b",
            "Example.com/x",
            "/x",
            "x/",
            &"n".repeat(64),
        ] {
            let e = parse(&[(bad, "v")]).expect_err(bad);
            assert!(e.0.contains("key"), "{bad}: {}", e.0);
        }
        assert!(parse(&[("k", &"v".repeat(257))]).is_err());
        assert!(parse(&[("k", "a\nb")]).is_err());
        let many: Vec<(String, String)> = (0..17).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(Labels::parse(many).is_err());
    }

    #[test]
    fn matching() {
        let have = parse(&[("a", "1"), ("b", "2")]).expect("valid");
        assert!(have.contains_all(&parse(&[("a", "1")]).expect("valid")));
        assert!(!have.contains_all(&parse(&[("a", "2")]).expect("valid")));
        assert!(have.contains_all(&Labels::default()));
        assert_eq!(Labels::from_stored("not json"), Labels::default());
    }
}
