//! Caller authentication: `authorization: Bearer <token>` metadata is matched
//! against the configured callers' token hashes in constant time; without
//! one, a verified client certificate (mTLS) is matched by its SPIFFE IDs
//! and DNS names. The caller's rate limit is applied, and its name and
//! policy are attached to the request.

use std::{sync::Arc, time::Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Status, service::Interceptor};

use super::rate::RateLimit;
use crate::{
    audit::{Audit, Event},
    config::CallerSetting,
    domain::{Caller, Policy},
    error::Error,
    listener::{ConnInfo, PeerIdentity},
};

/// Name used for every call when no callers are configured (loopback only).
const ANONYMOUS: &str = "anonymous";

/// The tonic interceptor.
#[derive(Clone)]
pub(crate) struct CallerAuth {
    callers: Arc<Vec<Known>>,
    /// Where failed authentications are recorded.
    audit: Option<Audit>,
}

/// A configured caller.
struct Known {
    caller: Caller,
    token_sha256s: Vec<[u8; 32]>,
    spiffe_ids: Vec<String>,
    dns_names: Vec<String>,
    rate: Option<RateLimit>,
    policy: Arc<Policy>,
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
                        token_sha256s: c.token_sha256s.clone(),
                        spiffe_ids: c.spiffe_ids.clone(),
                        dns_names: c.dns_names.clone(),
                        rate: c
                            .rate_limit
                            .map(|(per_second, burst)| RateLimit::new(per_second, burst, now)),
                        policy: Arc::new(c.policy.clone()),
                    })
                    .collect(),
            ),
            audit: None,
        }
    }

    /// Records failed authentications in `audit`.
    pub(crate) fn with_audit(mut self, audit: Audit) -> Self {
        self.audit = Some(audit);
        self
    }

    /// The caller presenting `header` and its policy, if it is within its
    /// rate limit.
    fn admit(
        &self,
        header: Option<&str>,
        peer: Option<&PeerIdentity>,
    ) -> Result<(Caller, Arc<Policy>), Error> {
        let known = match self.authenticate(header, peer)? {
            Some(known) => known,
            None => return Ok((Caller::trusted(ANONYMOUS), Arc::default())),
        };
        if let Some(rate) = &known.rate
            && let Err(retry_after) = rate.admit(Instant::now())
        {
            return Err(Error::RateLimited {
                caller: known.caller.as_str().to_owned(),
                retry_after,
            });
        }
        Ok((known.caller.clone(), known.policy.clone()))
    }

    /// The configured caller presenting `header`, or else the peer's
    /// certificate; `None` when no callers are configured (every call is
    /// anonymous).
    fn authenticate(
        &self,
        header: Option<&str>,
        peer: Option<&PeerIdentity>,
    ) -> Result<Option<&Known>, Error> {
        if self.callers.is_empty() {
            return Ok(None);
        }
        let Some(header) = header else {
            return match peer {
                Some(peer) => self.by_certificate(peer).map(Some),
                None => Err(Error::Unauthenticated(
                    "missing `authorization: Bearer <token>` metadata (or a client certificate naming a caller)",
                )),
            };
        };
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
            for hash in &known.token_sha256s {
                if bool::from(hash.ct_eq(&presented)) {
                    found = Some(known);
                }
            }
        }
        found
            .map(Some)
            .ok_or(Error::Unauthenticated("unknown caller token"))
    }
}

impl CallerAuth {
    /// The one caller the certificate's SPIFFE IDs and DNS names name.
    fn by_certificate(&self, peer: &PeerIdentity) -> Result<&Known, Error> {
        let mut named = self.callers.iter().filter(|k| {
            peer.uris.iter().any(|u| k.spiffe_ids.contains(u))
                || peer.dns_names.iter().any(|d| k.dns_names.contains(d))
        });
        match (named.next(), named.next()) {
            (Some(known), None) => Ok(known),
            (None, _) => Err(Error::Unauthenticated(
                "the client certificate names no configured caller",
            )),
            (Some(_), Some(_)) => Err(Error::Unauthenticated(
                "the client certificate names several callers",
            )),
        }
    }
}

impl Interceptor for CallerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let peer = request
            .extensions()
            .get::<ConnInfo>()
            .and_then(|info| info.peer.clone());
        let (caller, policy) = match self.admit(header, peer.as_deref()) {
            Ok(admitted) => admitted,
            Err(e) => {
                if let (Error::Unauthenticated(why), Some(audit)) = (&e, &self.audit) {
                    // Never the presented token: why it failed, and the
                    // certificate's names if one was shown.
                    let detail = match &peer {
                        Some(peer) => format!(
                            "{why}; certificate names {:?} {:?}",
                            peer.uris, peer.dns_names
                        ),
                        None => (*why).to_owned(),
                    };
                    audit.record(Event {
                        caller: "-".to_owned(),
                        connection_id: None,
                        action: "caller_unauthenticated",
                        outcome: "CALLER_UNAUTHENTICATED".to_owned(),
                        detail: Some(detail),
                    });
                }
                return Err(e.into());
            }
        };
        request.extensions_mut().insert(caller);
        request.extensions_mut().insert(policy);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(rate_limit: Option<(f64, u32)>) -> CallerAuth {
        CallerAuth::new(&[CallerSetting {
            name: "billing".into(),
            token_sha256s: vec![
                Sha256::digest(b"token-0123456789").into(),
                Sha256::digest(b"token-rotated-0123").into(),
            ],
            spiffe_ids: Vec::new(),
            dns_names: Vec::new(),
            rate_limit,
            policy: Policy::default(),
        }])
    }

    #[test]
    fn matches_known_token_only() {
        let auth = auth(None);
        for token in ["token-0123456789", "token-rotated-0123"] {
            let (caller, _) = auth
                .admit(Some(&format!("Bearer {token}")), None)
                .expect("ok");
            assert_eq!(caller.as_str(), "billing");
        }
        assert!(auth.admit(Some("Bearer wrong"), None).is_err());
        assert!(auth.admit(Some("token-0123456789"), None).is_err());
        assert!(auth.admit(None, None).is_err());
        assert_eq!(
            CallerAuth::new(&[])
                .admit(None, None)
                .expect("open")
                .0
                .as_str(),
            ANONYMOUS
        );
    }

    #[test]
    fn a_caller_over_its_rate_is_refused_with_the_wait() {
        let auth = auth(Some((1.0, 2)));
        let header = Some("Bearer token-0123456789");
        assert!(auth.admit(header, None).is_ok());
        assert!(auth.admit(header, None).is_ok());
        match auth.admit(header, None) {
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
            auth.admit(Some("Bearer wrong"), None),
            Err(Error::Unauthenticated(_))
        ));
    }
}
