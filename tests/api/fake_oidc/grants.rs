//! What the provider issued: authorization codes (single use, 60 seconds) and the access and refresh
//! tokens descending from each code. A code's descendants form one family, so a replayed code revokes
//! everything it led to (RFC 6749 §4.1.2) and a refresh rotates within the family.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::pkce;
use super::wire::{self, Reject};

/// RFC 6749 §4.1.2 recommends at most 10 minutes; this provider is stricter.
const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// What an accepted authorization request asked for, kept until its code is redeemed.
#[derive(Clone)]
pub(super) struct Authorization {
    pub nonce: String,
    pub code_challenge: String,
    pub scope: String,
    pub redirect_uri: String,
    /// When the user signed in (seconds since the epoch): the id_tokens' `auth_time`.
    pub auth_time: u64,
}

struct Code {
    authorization: Authorization,
    issued_at: Instant,
    used: bool,
}

/// The sign-in a token answer descends from: what its id_token and body repeat.
#[derive(Clone)]
pub(super) struct Session {
    /// The code the family started from.
    pub family: String,
    pub scope: String,
    /// Only the code exchange's id_token carries the nonce (OIDC Core §12.2).
    pub nonce: Option<String>,
    pub auth_time: u64,
}

struct Issued {
    session: Session,
    revoked: bool,
}

#[derive(Default)]
pub(super) struct Grants {
    codes: HashMap<String, Code>,
    access: HashMap<String, Issued>,
    refresh: HashMap<String, Issued>,
}

impl Grants {
    pub fn issue_code(&mut self, authorization: Authorization) -> String {
        let code = wire::random_hex(24);
        let entry = Code {
            authorization,
            issued_at: Instant::now(),
            used: false,
        };
        self.codes.insert(code.clone(), entry);
        code
    }

    /// RFC 6749 §4.1.3 and RFC 7636 §4.6. The code is spent by its first presentation, good or bad.
    pub fn redeem_code(
        &mut self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<Session, Reject> {
        let entry = self
            .codes
            .get_mut(code)
            .ok_or_else(|| Reject::invalid_grant("unknown authorization code"))?;
        let replayed = std::mem::replace(&mut entry.used, true);
        let expired = entry.issued_at.elapsed() > CODE_LIFETIME;
        let authorization = entry.authorization.clone();
        if replayed {
            self.revoke_family(code);
            return Err(Reject::invalid_grant(
                "authorization code presented twice; the tokens it issued are revoked (RFC 6749 §4.1.2)",
            ));
        }
        if expired {
            return Err(Reject::invalid_grant(format!(
                "authorization code older than {} s",
                CODE_LIFETIME.as_secs()
            )));
        }
        if redirect_uri != authorization.redirect_uri {
            return Err(Reject::invalid_grant(format!(
                "redirect_uri `{redirect_uri}` differs from the authorization request's `{}`",
                authorization.redirect_uri
            )));
        }
        pkce::check_verifier(verifier, &authorization.code_challenge)?;
        Ok(Session {
            family: code.to_owned(),
            scope: authorization.scope,
            nonce: Some(authorization.nonce),
            auth_time: authorization.auth_time,
        })
    }

    /// RFC 6749 §6: a live refresh token, rotated out by this use. `scope`, if sent, may only narrow.
    pub fn refresh(&mut self, token: &str, scope: Option<&str>) -> Result<Session, Reject> {
        let entry = self
            .refresh
            .get_mut(token)
            .ok_or_else(|| Reject::invalid_grant("unknown refresh token"))?;
        if entry.revoked {
            return Err(Reject::invalid_grant(
                "refresh token already rotated out or revoked",
            ));
        }
        let granted: Vec<&str> = entry.session.scope.split(' ').collect();
        if let Some(extra) = scope
            .into_iter()
            .flat_map(|s| s.split(' '))
            .find(|s| !granted.contains(s))
        {
            return Err(Reject::invalid_scope(format!(
                "scope `{extra}` was not granted originally (RFC 6749 §6)"
            )));
        }
        entry.revoked = true;
        Ok(entry.session.clone())
    }

    /// A new access and refresh token pair in `session`'s family.
    pub fn issue_tokens(&mut self, session: &Session) -> (String, String) {
        let access = format!("at-{}", wire::random_hex(24));
        let refresh = format!("rt-{}", wire::random_hex(24));
        let session = Session {
            nonce: None,
            ..session.clone()
        };
        for (map, token) in [(&mut self.access, &access), (&mut self.refresh, &refresh)] {
            let issued = Issued {
                session: session.clone(),
                revoked: false,
            };
            map.insert(token.clone(), issued);
        }
        (access, refresh)
    }

    /// RFC 7009 §2.1/§2.2: an access token stops working alone; a refresh token takes the access tokens
    /// of its grant along (the RFC's SHOULD). An unknown token is no error.
    pub fn revoke(&mut self, token: &str) {
        if let Some(issued) = self.access.get_mut(token) {
            issued.revoked = true;
        }
        let family = self.refresh.get(token).map(|r| r.session.family.clone());
        if let Some(family) = family {
            self.revoke_family(&family);
        }
    }

    pub fn access_works(&self, token: &str) -> bool {
        self.access.get(token).is_some_and(|issued| !issued.revoked)
    }

    pub fn refresh_works(&self, token: &str) -> bool {
        self.refresh
            .get(token)
            .is_some_and(|issued| !issued.revoked)
    }

    fn revoke_family(&mut self, family: &str) {
        let tokens = self.access.values_mut().chain(self.refresh.values_mut());
        for issued in tokens.filter(|issued| issued.session.family == family) {
            issued.revoked = true;
        }
    }
}
