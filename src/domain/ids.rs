//! Identifiers: a connection's UUID, provider ids, the caller's name for its
//! end user, redirect URIs and the authenticated calling service.

use std::fmt;

use super::{ParseError, bounded_text};

/// A connection's id: a UUID (v7 for new connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ConnectionId(uuid::Uuid);

impl ConnectionId {
    /// A new, time-ordered id.
    pub(crate) fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// Parses the text form (any UUID spelling uuid accepts).
    pub(crate) fn parse(value: &str) -> Result<Self, ParseError> {
        if value.is_empty() {
            return Err(ParseError::new("required"));
        }
        if value.len() > 45 {
            return Err(ParseError::new("not a connection id (UUID)"));
        }
        uuid::Uuid::parse_str(value)
            .map(Self)
            .map_err(|_| ParseError::new("not a connection id (UUID)"))
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hyphenated lower case: the stored form.
        self.0.hyphenated().fmt(f)
    }
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub(crate) struct $name(String);

        impl $name {
            /// Parses a value: 1 to the limit characters, no control characters.
            pub(crate) fn parse(value: impl Into<String>) -> Result<Self, ParseError> {
                let value = value.into();
                bounded_text(&value, $max)?;
                Ok(Self(value))
            }

            /// A value already checked when it was stored or configured.
            pub(crate) fn trusted(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The text.
            pub(crate) fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_id!(
    /// A configured provider's id, e.g. `ares`.
    ProviderId,
    64
);
text_id!(
    /// The calling service's own id for its end user.
    Subject,
    256
);
text_id!(
    /// A redirect URI; BeginAuth accepts only one registered for the provider.
    RedirectUri,
    2048
);
/// The authenticated calling service; every connection belongs to one.
/// Names come from the configuration, which checks them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Caller(String);

impl Caller {
    /// A configured or stored caller name.
    pub(crate) fn trusted(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The name.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_parse_and_print_canonically() {
        let id = ConnectionId::parse("019ABF3E-5C1D-7B52-9C43-0C6E2B1F4A77").expect("uuid");
        assert_eq!(id.to_string(), "019abf3e-5c1d-7b52-9c43-0c6e2b1f4a77");
        assert_eq!(
            ConnectionId::parse("nope").expect_err("invalid").0,
            "not a connection id (UUID)"
        );
        assert_eq!(ConnectionId::parse("").expect_err("invalid").0, "required");
        assert_ne!(ConnectionId::generate(), ConnectionId::generate());
    }

    #[test]
    fn text_ids_are_bounded() {
        assert!(Subject::parse("user-1").is_ok());
        assert_eq!(Subject::parse("").expect_err("invalid").0, "required");
        assert_eq!(
            ProviderId::parse("x".repeat(65)).expect_err("invalid").0,
            "at most 64 characters"
        );
        assert_eq!(
            Subject::parse("a\u{0}b").expect_err("invalid").0,
            "must not contain control characters"
        );
    }
}
