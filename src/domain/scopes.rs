//! Scopes: a set of OAuth scope tokens, stored space-separated.

use super::ParseError;

/// Most scopes one request may carry.
const MAX_SCOPES: usize = 32;
/// Longest scope token.
const MAX_SCOPE_LEN: usize = 128;

/// Requested or granted scopes, in order, without duplicates' meaning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Scopes(Vec<String>);

impl Scopes {
    /// Parses requested scopes: at most 32, each 1 to 128 characters without
    /// spaces or control characters. Empty means the provider's default.
    pub(crate) fn parse(values: Vec<String>) -> Result<Self, ParseError> {
        if values.len() > MAX_SCOPES {
            return Err(ParseError::new(format!("at most {MAX_SCOPES} scopes")));
        }
        if values.iter().any(|s| {
            s.is_empty()
                || s.len() > MAX_SCOPE_LEN
                || s.chars().any(|c| c.is_whitespace() || c.is_control())
        }) {
            return Err(ParseError::new(
                "each scope is 1 to 128 characters without spaces",
            ));
        }
        Ok(Self(values))
    }

    /// Scopes from configuration or a provider answer, already checked.
    pub(crate) fn trusted(values: Vec<String>) -> Self {
        Self(values)
    }

    /// The stored, space-separated form.
    pub(crate) fn from_stored(text: &str) -> Self {
        Self(
            text.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// Space-separated, as stored.
    pub(crate) fn to_stored(&self) -> String {
        self.0.join(" ")
    }

    /// Whether none were given.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scope tokens.
    pub(crate) fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Into the scope tokens.
    pub(crate) fn into_vec(self) -> Vec<String> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_store() {
        let s = Scopes::parse(vec!["read".into(), "write".into()]).expect("ok");
        assert_eq!(s.to_stored(), "read write");
        assert_eq!(Scopes::from_stored("read  write"), s);
        assert!(Scopes::parse(vec!["a b".into()]).is_err());
        assert!(Scopes::parse(vec![String::new()]).is_err());
        assert!(Scopes::parse(vec!["x".into(); 33]).is_err());
        assert!(Scopes::parse(Vec::new()).expect("empty").is_empty());
    }
}
