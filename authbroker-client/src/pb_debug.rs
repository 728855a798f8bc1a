//! Debug for the generated messages that carry secrets: every field but the
//! secret ones, so a `?request` in a log line can never leak them.

use std::fmt;

use crate::pb;

const REDACTED: &str = "[redacted]";

impl fmt::Debug for pb::BeginAuthResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL embeds the state.
        f.debug_struct("BeginAuthResponse")
            .field("authorization_url", &REDACTED)
            .field("state", &REDACTED)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl fmt::Debug for pb::CompleteAuthRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompleteAuthRequest")
            .field("state", &REDACTED)
            .field("code", &REDACTED)
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .field("params", &self.params.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl fmt::Debug for pb::SignInWithPasswordRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignInWithPasswordRequest")
            .field("provider", &self.provider)
            .field("subject", &self.subject)
            .field("username", &self.username)
            .field("password", &REDACTED)
            .finish()
    }
}

impl fmt::Debug for pb::GetAccessTokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetAccessTokenResponse")
            .field("access_token", &REDACTED)
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let printed = format!(
            "{:?} {:?} {:?} {:?}",
            pb::BeginAuthResponse {
                authorization_url: "https://x/?state=S3CRET".into(),
                state: "S3CRET".into(),
                expires_at: None
            },
            pb::CompleteAuthRequest {
                state: "S3CRET".into(),
                code: "S3CRET".into(),
                ..Default::default()
            },
            pb::SignInWithPasswordRequest {
                password: "S3CRET".into(),
                ..Default::default()
            },
            pb::GetAccessTokenResponse {
                access_token: "S3CRET".into(),
                ..Default::default()
            },
        );
        assert!(!printed.contains("S3CRET"), "{printed}");
        assert!(printed.contains("[redacted]"));
    }
}
