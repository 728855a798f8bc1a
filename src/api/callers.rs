//! Caller authentication: `authorization: Bearer <token>` metadata is matched
//! against the configured callers' token hashes in constant time, and the
//! caller's name is attached to the request.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Status, service::Interceptor};

use crate::{config::CallerSetting, domain::Caller, error::Error};

/// Name used for every call when no callers are configured (loopback only).
const ANONYMOUS: &str = "anonymous";

/// The tonic interceptor.
#[derive(Clone)]
pub(crate) struct CallerAuth {
    callers: Arc<Vec<(Caller, [u8; 32])>>,
}

impl CallerAuth {
    /// Authenticates against `callers`; with none, every call is [`ANONYMOUS`].
    pub(crate) fn new(callers: &[CallerSetting]) -> Self {
        Self {
            callers: Arc::new(
                callers
                    .iter()
                    .map(|c| (Caller::trusted(&c.name), c.token_sha256))
                    .collect(),
            ),
        }
    }

    fn authenticate(&self, header: Option<&str>) -> Result<Caller, Error> {
        if self.callers.is_empty() {
            return Ok(Caller::trusted(ANONYMOUS));
        }
        let header = header.ok_or(Error::Unauthenticated(
            "missing `authorization: Bearer <token>` metadata",
        ))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(Error::Unauthenticated(
                "authorization metadata must be `Bearer <token>`",
            ))?;
        let presented: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        // Compare against every caller so timing does not reveal which matched.
        let mut found = None;
        for (name, hash) in self.callers.iter() {
            if bool::from(hash.ct_eq(&presented)) {
                found = Some(name);
            }
        }
        found
            .cloned()
            .ok_or(Error::Unauthenticated("unknown caller token"))
    }
}

impl Interceptor for CallerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let caller = self.authenticate(header).map_err(Status::from)?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> CallerAuth {
        CallerAuth::new(&[CallerSetting {
            name: "billing".into(),
            token_sha256: Sha256::digest(b"token-0123456789").into(),
        }])
    }

    #[test]
    fn matches_known_token_only() {
        assert_eq!(
            auth()
                .authenticate(Some("Bearer token-0123456789"))
                .expect("ok")
                .as_str(),
            "billing"
        );
        assert!(auth().authenticate(Some("Bearer wrong")).is_err());
        assert!(auth().authenticate(Some("token-0123456789")).is_err());
        assert!(auth().authenticate(None).is_err());
        assert_eq!(
            CallerAuth::new(&[])
                .authenticate(None)
                .expect("open")
                .as_str(),
            ANONYMOUS
        );
    }
}
