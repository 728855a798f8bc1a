//! Caller authentication: `authorization: Bearer <token>` metadata is matched
//! against the configured callers' token hashes in constant time, the
//! caller's rate limit is applied, and the caller's name is attached to the
//! request.

use std::{sync::Arc, time::Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Status, service::Interceptor};

use super::rate::RateLimit;
use crate::{config::CallerSetting, domain::Caller, error::Error};

/// Name used for every call when no callers are configured (loopback only).
const ANONYMOUS: &str = "anonymous";

/// The tonic interceptor.
#[derive(Clone)]
pub(crate) struct CallerAuth {
    callers: Arc<Vec<Known>>,
}

/// A configured caller.
struct Known {
    caller: Caller,
    token_sha256: [u8; 32],
    rate: Option<RateLimit>,
}

impl CallerAuth {
    /// Authenticates against `callers`; with none, every call is [`ANONYMOUS`].
    pub(crate) fn new(callers: &[CallerSetting]) -> Self {
        let now = Instant::now();
        Self {
            callers: Arc::new(
                callers
                    .iter()
                    .map(|c| Known {
                        caller: Caller::trusted(&c.name),
                        token_sha256: c.token_sha256,
                        rate: c
                            .rate_limit
                            .map(|(per_second, burst)| RateLimit::new(per_second, burst, now)),
                    })
                    .collect(),
            ),
        }
    }

    /// The caller presenting `header`, if it is within its rate limit.
    fn admit(&self, header: Option<&str>) -> Result<Caller, Error> {
        let known = match self.authenticate(header)? {
            Some(known) => known,
            None => return Ok(Caller::trusted(ANONYMOUS)),
        };
        if let Some(rate) = &known.rate
            && let Err(retry_after) = rate.admit(Instant::now())
        {
            return Err(Error::RateLimited {
                caller: known.caller.as_str().to_owned(),
                retry_after,
            });
        }
        Ok(known.caller.clone())
    }

    /// The configured caller presenting `header`; `None` when no callers are
    /// configured (every call is anonymous).
    fn authenticate(&self, header: Option<&str>) -> Result<Option<&Known>, Error> {
        if self.callers.is_empty() {
            return Ok(None);
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
        for known in self.callers.iter() {
            if bool::from(known.token_sha256.ct_eq(&presented)) {
                found = Some(known);
            }
        }
        found
            .map(Some)
            .ok_or(Error::Unauthenticated("unknown caller token"))
    }
}

impl Interceptor for CallerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let caller = self.admit(header).map_err(Status::from)?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(rate_limit: Option<(f64, u32)>) -> CallerAuth {
        CallerAuth::new(&[CallerSetting {
            name: "billing".into(),
            token_sha256: Sha256::digest(b"token-0123456789").into(),
            rate_limit,
        }])
    }

    #[test]
    fn matches_known_token_only() {
        let auth = auth(None);
        assert_eq!(
            auth.admit(Some("Bearer token-0123456789"))
                .expect("ok")
                .as_str(),
            "billing"
        );
        assert!(auth.admit(Some("Bearer wrong")).is_err());
        assert!(auth.admit(Some("token-0123456789")).is_err());
        assert!(auth.admit(None).is_err());
        assert_eq!(
            CallerAuth::new(&[]).admit(None).expect("open").as_str(),
            ANONYMOUS
        );
    }

    #[test]
    fn a_caller_over_its_rate_is_refused_with_the_wait() {
        let auth = auth(Some((1.0, 2)));
        let header = Some("Bearer token-0123456789");
        assert!(auth.admit(header).is_ok());
        assert!(auth.admit(header).is_ok());
        match auth.admit(header) {
            Err(Error::RateLimited {
                caller,
                retry_after,
            }) => {
                assert_eq!(caller, "billing");
                assert!(retry_after > std::time::Duration::from_millis(900));
            }
            other => panic!("{other:?}"),
        }
        // A wrong token is refused as such, not counted against the caller.
        assert!(matches!(
            auth.admit(Some("Bearer wrong")),
            Err(Error::Unauthenticated(_))
        ));
    }
}
