//! A strict fake OpenID Connect provider: a real HTTP server on 127.0.0.1 with discovery, a JWKS of ES256
//! keys, the code flow with PKCE and nonce, rotating refresh tokens, userinfo and RFC 7009 revocation. It
//! refuses every request OIDC Core, RFC 6749, RFC 7636 or RFC 9207 would have a provider refuse, records
//! why, and can forge its id_tokens one way at a time, so a passing test proves authbroker checks them.
//!
//! This file is the public API and the shared state; `fake_oidc/` holds the endpoints and what they share.

// A shared test library: each test uses a different part of it, so some items are unused in any one build.
#![allow(dead_code)]

mod authorize;
mod client;
mod discovery;
mod grants;
mod id_token;
mod jws;
mod pkce;
mod recording;
mod revocation;
mod token;
mod userinfo;
mod wire;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::{get, post};
use tokio::task::JoinHandle;
use url::Url;

use grants::Grants;
use jws::Keys;

const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
const JWKS_PATH: &str = "/jwks";
const AUTHORIZE_PATH: &str = "/authorize";
const TOKEN_PATH: &str = "/token";
const USERINFO_PATH: &str = "/userinfo";
const REVOCATION_PATH: &str = "/revoke";
/// The scopes the discovery document lists; others are still accepted (OIDC Core §3.1.2.1: ignored).
const SCOPES: [&str; 4] = ["openid", "email", "profile", "offline_access"];

/// How the id_tokens issued from now on misbehave; each variant changes exactly one thing, and it stays
/// until set back to `Forgery::None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Forgery {
    /// Behave.
    #[default]
    None,
    /// Signed by a key that is not in the JWKS, under the current key's `kid`.
    WrongKey,
    /// `iss` is another issuer.
    WrongIssuer,
    /// `aud` is another client.
    WrongAudience,
    /// `exp` is 10 minutes ago.
    Expired,
    /// `nonce` is not the one the authorization request sent (on a refresh, where none belongs, one is
    /// added that is not the original's: OIDC Core §12.2).
    WrongNonce,
    /// Header `alg` is `none` and the signature is empty.
    AlgNone,
    /// `sub` is another user, e.g. on a refresh of the first user's tokens.
    WrongSubject,
    /// The token answer has no `id_token` at all.
    MissingIdToken,
}

/// A running fake provider. Cheap to clone; the server stops when the last clone is dropped.
#[derive(Clone)]
pub struct FakeOidc {
    inner: Arc<Inner>,
    server: Arc<Server>,
}

/// The server task, aborted with the last `FakeOidc` so a test's fake does not outlive it.
struct Server(JoinHandle<()>);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the endpoints share.
struct Inner {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    issuer: String,
    client_id: String,
    client_secret: String,
    /// The one registered redirect URI, compared exactly.
    redirect_uri: String,
    /// The end user's `sub`.
    subject: String,
    state: Mutex<State>,
}

/// Everything that changes while the fake runs. Never held across an `.await`.
struct State {
    keys: Keys,
    forgery: Forgery,
    /// The `issuer` the discovery document claims, when it is not the real one.
    discovery_issuer: Option<String>,
    /// The `iss` of the authorization response (RFC 9207), `None` to leave it out.
    callback_iss: Option<String>,
    discovery_fetches: usize,
    jwks_fetches: usize,
    /// Token requests received, by `grant_type`, refused or not.
    token_requests: BTreeMap<String, usize>,
    grants: Grants,
    /// `token_type_hint` of each accepted revocation, empty when none was sent.
    revocations: Vec<String>,
    rejections: Vec<String>,
    last_nonce: Option<String>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the fake's state from the others.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The end user's email, as userinfo tells it.
    fn email(&self) -> String {
        format!("{}@example.test", self.subject)
    }
}

/// Seconds since the Unix epoch, the unit of JWT time claims (RFC 7519 §2 NumericDate).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

impl FakeOidc {
    /// Starts the fake on 127.0.0.1:0 with a random client_id/client_secret pair, `redirect_uri`
    /// registered (an absolute URL, compared exactly) and `subject` as the end user's `sub`.
    pub async fn start(redirect_uri: &str, subject: &str) -> FakeOidc {
        Url::parse(redirect_uri)
            .unwrap_or_else(|e| panic!("redirect URI `{redirect_uri}` is not absolute: {e}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the OIDC fake");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let issuer = format!("http://{address}");
        let inner = Arc::new(Inner {
            // Unreserved characters only: raw and form-encoded Basic credentials (RFC 6749 §2.3.1) agree.
            client_id: format!("oidc-client-{}", wire::random_hex(6)),
            client_secret: format!("oidc-secret-{}", wire::random_hex(16)),
            redirect_uri: redirect_uri.to_owned(),
            subject: subject.to_owned(),
            state: Mutex::new(State {
                keys: Keys::generate(),
                forgery: Forgery::None,
                discovery_issuer: None,
                callback_iss: Some(issuer.clone()),
                discovery_fetches: 0,
                jwks_fetches: 0,
                token_requests: BTreeMap::new(),
                grants: Grants::default(),
                revocations: Vec::new(),
                rejections: Vec::new(),
                last_nonce: None,
            }),
            issuer,
        });
        let app = routes(&inner);
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("OIDC fake server stopped");
        });
        FakeOidc {
            inner,
            server: Arc::new(Server(server)),
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn issuer(&self) -> String {
        self.inner.issuer.clone()
    }

    pub fn client_id(&self) -> String {
        self.inner.client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.inner.client_secret.clone()
    }

    /// How the id_tokens issued from now on misbehave.
    pub fn set_forgery(&self, forgery: Forgery) {
        self.inner.lock().forgery = forgery;
    }

    /// A new ES256 key with a new `kid`: the JWKS serves the old and the new from now on, and new
    /// id_tokens are signed by the new one (a provider's routine key rollover).
    pub fn rotate_signing_key(&self) {
        self.inner.lock().keys.rotate();
    }

    /// The `issuer` the discovery document claims (an IdP mix-up); `None` for the real one.
    pub fn set_discovery_issuer(&self, issuer: Option<String>) {
        self.inner.lock().discovery_issuer = issuer;
    }

    /// The `iss` sent in the authorization response (RFC 9207); `None` leaves it out. The real issuer
    /// by default.
    pub fn set_callback_iss(&self, iss: Option<String>) {
        self.inner.lock().callback_iss = iss;
    }

    pub fn jwks_fetches(&self) -> usize {
        self.inner.lock().jwks_fetches
    }

    pub fn discovery_fetches(&self) -> usize {
        self.inner.lock().discovery_fetches
    }

    /// Token requests received with this `grant_type`, refused or not.
    pub fn token_requests(&self, grant_type: &str) -> usize {
        let state = self.inner.lock();
        state.token_requests.get(grant_type).copied().unwrap_or(0)
    }

    /// Why each refused request was refused, as "METHOD /path: reason".
    pub fn rejections(&self) -> Vec<String> {
        self.inner.lock().rejections.clone()
    }

    /// Whether `token` still works here as an access token (userinfo accepts it).
    pub fn access_token_works(&self, token: &str) -> bool {
        self.inner.lock().grants.access_works(token)
    }

    /// Whether `token` still works here as a refresh token (not rotated out, not revoked).
    pub fn refresh_token_works(&self, token: &str) -> bool {
        self.inner.lock().grants.refresh_works(token)
    }

    /// `token_type_hint` of each accepted revocation, in order; empty for one sent without a hint.
    pub fn revocations(&self) -> Vec<String> {
        self.inner.lock().revocations.clone()
    }

    /// The `nonce` of the last accepted authorization request.
    pub fn last_nonce(&self) -> Option<String> {
        self.inner.lock().last_nonce.clone()
    }

    /// The end user approves: a real HTTP GET of `authorization_url` (which must point at this fake),
    /// no redirect followed; expects a 302 back to the registered redirect URI with a code and returns
    /// the callback's query parameters (`code`, `state`, `iss`). Panics with the fake's reason if it
    /// refused the link.
    pub async fn approve(&self, authorization_url: &str) -> BTreeMap<String, String> {
        let url = Url::parse(authorization_url).unwrap_or_else(|e| {
            panic!("authorization URL `{authorization_url}` does not parse: {e}")
        });
        let issuer = Url::parse(&self.inner.issuer).expect("the issuer is a URL");
        assert_eq!(
            (url.origin(), url.path()),
            (issuer.origin(), AUTHORIZE_PATH),
            "authorization URL `{authorization_url}` is not the OIDC fake's authorization endpoint"
        );
        let page = crate::fake::browser::get(&url, &[])
            .await
            .unwrap_or_else(|e| panic!("GET {authorization_url} at the OIDC fake failed: {e}"));
        let last_rejection = || self.rejections().last().cloned().unwrap_or_default();
        let location = match (page.status, page.location) {
            (302, Some(location)) => location,
            (status, _) => panic!(
                "OIDC fake refused `{authorization_url}` with {status}: {}",
                page.body
            ),
        };
        let mut callback =
            Url::parse(&location).unwrap_or_else(|e| panic!("Location `{location}`: {e}"));
        let params: BTreeMap<String, String> = callback.query_pairs().into_owned().collect();
        callback.set_query(None);
        let registered = Url::parse(&self.inner.redirect_uri).expect("checked at start");
        assert_eq!(
            (callback.origin(), callback.path()),
            (registered.origin(), registered.path()),
            "OIDC fake sent the user to {location}, not back to the client"
        );
        assert!(
            params.contains_key("code"),
            "OIDC fake redirected back without a code: {params:?} ({})",
            last_rejection()
        );
        params
    }
}

/// Every endpoint, behind the layer that records rejections.
fn routes(inner: &Arc<Inner>) -> Router {
    Router::new()
        .route(DISCOVERY_PATH, get(discovery::document))
        .route(JWKS_PATH, get(discovery::jwks))
        .route(AUTHORIZE_PATH, get(authorize::page))
        .route(TOKEN_PATH, post(token::endpoint))
        .route(USERINFO_PATH, get(userinfo::endpoint))
        .route(REVOCATION_PATH, post(revocation::endpoint))
        .fallback(crate::fake::recording::no_route)
        .method_not_allowed_fallback(crate::fake::recording::wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(inner),
            recording::record,
        ))
        .with_state(Arc::clone(inner))
}
