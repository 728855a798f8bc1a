//! Secrets as distinct types: a refresh token cannot be passed where an
//! access token is expected, Debug prints `[redacted]`, and the only way to
//! the value is `secret()`, whose call sites are few and easy to audit. Only
//! the access token, which the cache hands out, is `Clone`.

use std::fmt;

macro_rules! secret {
    ($(#[$doc:meta])* $name:ident $(, $derive:ident)?) => {
        $(#[$doc])*
        #[derive(PartialEq, Eq $(, $derive)?)]
        pub struct $name(String);

        impl $name {
            /// Wraps the value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret itself.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }

        // The value does not outlive its use in freed memory.
        impl Drop for $name {
            fn drop(&mut self) {
                zeroize::Zeroize::zeroize(&mut self.0);
            }
        }
    };
}

secret!(
    /// An access token: what callers get out of authbroker.
    AccessToken,
    Clone
);
secret!(
    /// A refresh token: never leaves authbroker.
    RefreshToken
);
secret!(
    /// An authorization code from the provider's callback; single use.
    AuthorizationCode
);
secret!(
    /// An OAuth client secret from configuration.
    ClientSecret
);
secret!(
    /// A PKCE code verifier (RFC 7636); deliberately not `Clone`.
    PkceVerifier
);
secret!(
    /// An end user's password for the resource owner password grant.
    Password
);
secret!(
    /// An OpenID `id_token`: checked, its `sub` kept, the token itself never
    /// stored or returned.
    IdToken
);

/// Ciphertext of a sealed column (`v1.<key id>.<data>`), as stored. Not a
/// secret, but not text to print either.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(String);

impl Sealed {
    /// Wraps a stored ciphertext.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Into the stored form.
    pub fn into_stored(self) -> String {
        self.0
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let all = [
            format!("{:?}", AccessToken::new("hunter2")),
            format!("{:?}", RefreshToken::new("hunter2")),
            format!("{:?}", AuthorizationCode::new("hunter2")),
            format!("{:?}", ClientSecret::new("hunter2")),
            format!("{:?}", PkceVerifier::new("hunter2")),
            format!("{:?}", Password::new("hunter2")),
            format!("{:?}", IdToken::new("hunter2")),
            format!("{:?}", Sealed::from_stored("hunter2".into())),
        ];
        for text in all {
            assert!(!text.contains("hunter2"), "{text}");
        }
        assert_eq!(
            format!("{:?}", RefreshToken::new("x")),
            "RefreshToken([redacted])"
        );
        assert_eq!(AccessToken::new("t").secret(), "t");
    }
}
