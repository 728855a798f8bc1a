//! The parsed domain: values made once at the edge (the API's parser, the
//! store's row mapping) that the rest of the service trusts. Secrets are
//! distinct types whose Debug never prints them.

mod connection;
mod ids;
mod labels;
mod policy;
mod scopes;
mod secrets;
mod usage;

pub(crate) use connection::{Connection, ConnectionStatus, ServedToken};
pub(crate) use ids::{Caller, ConnectionId, ProviderId, RedirectUri, Subject};
pub(crate) use labels::Labels;
pub use policy::{Denied, Policy};
pub(crate) use scopes::Scopes;
pub use secrets::{
    AccessToken, AuthorizationCode, ClientSecret, IdToken, Password, PkceVerifier, RefreshToken,
    Sealed,
};
pub(crate) use usage::{Credits, IdempotencyKey, UsageLabel, UsageStatus};

/// Why a value did not parse; the API names the field it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError(pub(crate) String);

impl ParseError {
    fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// A bounded text without control characters: the common shape of ids and
/// of the API's free text fields.
pub(crate) fn bounded_text(value: &str, max_chars: usize) -> Result<(), ParseError> {
    if value.is_empty() {
        return Err(ParseError::new("required"));
    }
    if value.chars().count() > max_chars {
        return Err(ParseError::new(format!("at most {max_chars} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(ParseError::new("must not contain control characters"));
    }
    Ok(())
}
