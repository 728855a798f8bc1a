//! What the provider has handed out: user accounts, authorization codes, access and refresh tokens.
//! Pure bookkeeping with the time passed in: every rule a grant is checked against lives here.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;

use super::profile::{Profile, TokenShape};
use super::wire::random_hex;

/// An account at the provider.
#[derive(Clone, Debug)]
pub(super) struct User {
    pub id: String,
    pub email: String,
    pub password: String,
    pub credits: i64,
    pub email_verified: bool,
}

/// An authorization code as issued by the authorize page.
struct Code {
    user_id: String,
    client_id: String,
    redirect_uri: String,
    issued: Instant,
    /// Pretended extra age (see `FakeProvider::age_codes`), so tests need not wait minutes.
    aged: Duration,
    lifetime: Duration,
    used: bool,
}

struct Access {
    user_id: String,
    expires: Option<Instant>,
    expired: bool,
}

struct Refresh {
    user_id: String,
    /// The redirect URI of the flow the token descends from (`None` for the password grant).
    redirect_uri: Option<String>,
    revoked: bool,
}

/// A token response's content.
pub(super) struct Issued {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<u64>,
}

/// The state of a refresh token that is still usable.
pub(super) struct RefreshGrant {
    pub user_id: String,
    pub redirect_uri: Option<String>,
}

#[derive(Default)]
pub(super) struct Registry {
    users: BTreeMap<String, User>,
    codes: HashMap<String, Code>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    pub last_access_token: Option<String>,
    pub last_refresh_token: Option<String>,
    pub refreshes_accepted: usize,
}

impl Registry {
    pub fn add_user(&mut self, user: User) {
        self.users.insert(user.id.clone(), user);
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.get(id)
    }

    pub fn user_mut(&mut self, id: &str) -> Option<&mut User> {
        self.users.get_mut(id)
    }

    /// Checks the resource-owner password grant's credentials; the username is the email.
    pub fn authenticate(&self, email: &str, password: &str) -> Result<String, String> {
        let user = self.users.values().find(|u| u.email == email);
        match user {
            None => Err(format!("no user with email `{email}`")),
            Some(user) if user.password != password => Err(format!("wrong password for `{email}`")),
            Some(user) if !user.email_verified => {
                Err(format!("`{email}` has not verified the email"))
            }
            Some(user) => Ok(user.id.clone()),
        }
    }

    pub fn issue_code(
        &mut self,
        user_id: &str,
        client_id: &str,
        redirect_uri: &str,
        lifetime: Duration,
    ) -> String {
        let code = random_hex(32);
        let entry = Code {
            user_id: user_id.to_owned(),
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            issued: Instant::now(),
            aged: Duration::ZERO,
            lifetime,
            used: false,
        };
        self.codes.insert(code.clone(), entry);
        code
    }

    /// Makes every code issued so far look `by` older.
    pub fn age_codes(&mut self, by: Duration) {
        for code in self.codes.values_mut() {
            code.aged += by;
        }
    }

    /// Redeems a code once (RFC 6749 §4.1.2, §4.1.3). The redirect URI is compared when given.
    pub fn redeem_code(
        &mut self,
        code: &str,
        client_id: &str,
        redirect_uri: Option<&str>,
    ) -> Result<(String, String), String> {
        let entry = self.codes.get_mut(code).ok_or("unknown code")?;
        let age = entry.issued.elapsed() + entry.aged;
        if entry.used {
            return Err("code already used".into());
        }
        if age > entry.lifetime {
            return Err(format!(
                "code expired: {} s old, valid {} s",
                age.as_secs(),
                entry.lifetime.as_secs()
            ));
        }
        if entry.client_id != client_id {
            return Err(format!("code was issued to client `{}`", entry.client_id));
        }
        if let Some(given) = redirect_uri
            && given != entry.redirect_uri
        {
            return Err(format!(
                "redirect_uri `{given}` differs from `{}` the code was issued for",
                entry.redirect_uri
            ));
        }
        entry.used = true;
        Ok((entry.user_id.clone(), entry.redirect_uri.clone()))
    }

    /// Looks a refresh token up without using it.
    pub fn refresh_grant(&self, token: &str) -> Result<RefreshGrant, String> {
        match self.refresh.get(token) {
            None => Err("unknown refresh token".into()),
            Some(entry) if entry.revoked => Err("refresh token was revoked or rotated out".into()),
            Some(entry) => Ok(RefreshGrant {
                user_id: entry.user_id.clone(),
                redirect_uri: entry.redirect_uri.clone(),
            }),
        }
    }

    /// Whom a refresh token was issued to, whatever became of it since.
    pub fn refresh_token_user(&self, token: &str) -> Option<String> {
        self.refresh.get(token).map(|entry| entry.user_id.clone())
    }

    pub fn revoke_refresh_token(&mut self, token: &str) {
        if let Some(entry) = self.refresh.get_mut(token) {
            entry.revoked = true;
        }
    }

    pub fn revoke_access_token(&mut self, token: &str) {
        if let Some(entry) = self.access.get_mut(token) {
            entry.expired = true;
        }
    }

    pub fn revoke_all_refresh_tokens(&mut self) {
        self.refresh
            .values_mut()
            .for_each(|entry| entry.revoked = true);
    }

    pub fn expire_all_access_tokens(&mut self) {
        self.access
            .values_mut()
            .for_each(|entry| entry.expired = true);
    }

    /// Issues an access token (and a refresh token when asked) for a user.
    pub fn issue_tokens(
        &mut self,
        profile: &Profile,
        user_id: &str,
        client_id: &str,
        redirect_uri: Option<&str>,
        expires_in: Option<u64>,
        with_refresh_token: bool,
    ) -> Issued {
        let access_token = match profile.access_token_shape {
            TokenShape::Hex(bytes) => random_hex(bytes),
            TokenShape::Jwt => jwt_like(user_id, client_id, expires_in),
        };
        let expires = expires_in.map(|secs| Instant::now() + Duration::from_secs(secs));
        let access = Access {
            user_id: user_id.to_owned(),
            expires,
            expired: false,
        };
        self.access.insert(access_token.clone(), access);
        self.last_access_token = Some(access_token.clone());
        let refresh_token = with_refresh_token.then(|| {
            let token = random_hex(profile.refresh_token_bytes);
            let entry = Refresh {
                user_id: user_id.to_owned(),
                redirect_uri: redirect_uri.map(str::to_owned),
                revoked: false,
            };
            self.refresh.insert(token.clone(), entry);
            self.last_refresh_token = Some(token.clone());
            token
        });
        Issued {
            access_token,
            refresh_token,
            expires_in,
        }
    }

    /// The user behind a bearer token that is known, not expired and within its lifetime.
    pub fn bearer_user(&self, token: &str) -> Result<String, String> {
        let entry = self.access.get(token).ok_or("unknown access token")?;
        let past_lifetime = entry.expires.is_some_and(|at| Instant::now() >= at);
        if entry.expired || past_lifetime {
            return Err("access token expired".into());
        }
        Ok(entry.user_id.clone())
    }
}

/// A token that looks like the JWT Askara issues (doc 003 line 36: "analyze the access token content"
/// with jwt.io); the signature is random, the broker must treat it as opaque.
fn jwt_like(user_id: &str, client_id: &str, expires_in: Option<u64>) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    let header = json!({ "alg": "RS256", "typ": "JWT" });
    let mut payload = json!({ "sub": user_id, "aud": client_id, "iat": now, "jti": uuid::Uuid::new_v4().to_string() });
    if let Some(secs) = expires_in {
        payload["exp"] = json!(now + secs);
    }
    let signature: [u8; 64] = rand::random();
    format!(
        "{}.{}.{}",
        b64.encode(header.to_string()),
        b64.encode(payload.to_string()),
        b64.encode(signature)
    )
}
