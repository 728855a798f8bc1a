//! Strict fake OAuth2 providers: real HTTP servers on 127.0.0.1 that behave the way each provider's
//! document (shared/seeds 000-004) says and reject every request that document would reject, so a passing
//! integration test proves authbroker's wire format. Every request is recorded, every rejection explained.
//!
//! This file is the public API and the shared state; `fake/` holds the endpoints (one file per provider
//! with its quirks, plus the code they share).

// A shared test library: each test uses a different part of it, so some items are unused in any one build.
#![allow(dead_code)]

mod ares;
mod aries;
mod arterra;
mod askara;
mod authorize;
pub(crate) mod browser;
mod chaos;
mod fault;
mod profile;
pub(crate) mod recording;
mod registry;
mod resource;
mod revocation;
mod token;
pub(crate) mod wire;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use url::Url;

pub use chaos::Chaos;
use profile::Profile;
use registry::{Registry, User};

/// The providers authbroker brokers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// ARES (docs 000, 001): form-encoded token requests, rotating refresh tokens, a credits API.
    Ares,
    /// Aries (doc 002): RFC 6749 form requests, refresh tokens that do not rotate.
    Aries,
    /// Askara (doc 003): JSON token requests, JWT access tokens, rotating refresh tokens.
    Askara,
    /// ARterra Labs (doc 004): Basic client auth, JSON bodies, 3-minute codes, sign-up without a code.
    Arterra,
}

impl Kind {
    /// Every kind, for tests that hold for all providers.
    pub const ALL: [Kind; 4] = [Kind::Ares, Kind::Aries, Kind::Askara, Kind::Arterra];

    fn profile(self) -> &'static Profile {
        match self {
            Kind::Ares => &ares::PROFILE,
            Kind::Aries => &aries::PROFILE,
            Kind::Askara => &askara::PROFILE,
            Kind::Arterra => &arterra::PROFILE,
        }
    }

    fn routes(self) -> Router<Arc<Inner>> {
        match self {
            Kind::Ares => ares::routes(),
            Kind::Aries => aries::routes(),
            Kind::Askara => askara::routes(),
            Kind::Arterra => arterra::routes(),
        }
    }
}

/// A way for the provider to misbehave; it stays until set back to `Fault::None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Behave.
    #[default]
    None,
    /// 200 with an HTML page instead of JSON.
    Html,
    /// 200 `application/json` with a truncated body.
    MalformedJson,
    /// 503 with a text body.
    ServerError,
    /// Never answer (sleeps an hour).
    Hang,
    /// 200 JSON with `token_type` and `expires_in` but no `access_token`.
    MissingAccessToken,
    /// 429 with `Retry-After`.
    TooManyRequests {
        /// Value of the `Retry-After` header, in seconds.
        retry_after_secs: u64,
    },
}

/// One request as the provider received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string, empty when there was none.
    pub query: String,
    /// Headers in received order; names are lower-case.
    pub headers: Vec<(String, String)>,
    /// Raw body (lossy UTF-8).
    pub body: String,
    /// Status answered; 0 while the request is still unanswered (e.g. `Fault::Hang`).
    pub status: u16,
    /// When the request had arrived (its body read).
    pub received_at: Instant,
    /// When the answer left the endpoint; `None` while it is still unanswered.
    pub answered_at: Option<Instant>,
}

/// A usage the provider charged (ARES), whether or not its answer reached the client.
#[derive(Clone, Debug)]
pub struct Charge {
    pub user_id: String,
    /// The request's `usage` label.
    pub usage: String,
    pub credits: i64,
    /// When the credits moved.
    pub at: Instant,
}

impl RecordedRequest {
    /// The first value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running fake provider. Cheap to clone; the server lives as long as the test's runtime.
#[derive(Clone)]
pub struct FakeProvider {
    inner: Arc<Inner>,
}

/// What the endpoints share.
struct Inner {
    kind: Kind,
    base_url: String,
    client_id: String,
    client_secret: String,
    redirect_uris: Vec<String>,
    state: Mutex<State>,
}

/// Everything that changes while the fake runs. Never held across an `.await`.
struct State {
    registry: Registry,
    token_lifetime: Option<u64>,
    issue_refresh_tokens: bool,
    fault: Fault,
    userinfo_fault: Fault,
    usage_fault: Fault,
    revocation_fault: Fault,
    chaos: Chaos,
    delay: Duration,
    answer_delay: Duration,
    requests: Vec<RecordedRequest>,
    rejections: Vec<String>,
    charges: Vec<Charge>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the fake's state from the others.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl FakeProvider {
    /// Starts the fake on 127.0.0.1:0 with a random client_id/client_secret pair and the given redirect
    /// URIs registered (absolute URLs, compared exactly).
    pub async fn start(kind: Kind, redirect_uris: &[&str]) -> FakeProvider {
        for uri in redirect_uris {
            Url::parse(uri).unwrap_or_else(|e| panic!("redirect URI `{uri}` is not absolute: {e}"));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the fake provider");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let inner = Arc::new(Inner {
            kind,
            base_url: format!("http://{address}"),
            // The shape of doc 004 line 97's example credentials.
            client_id: format!("client_{}", wire::random_hex(4)),
            client_secret: format!("secret_{}", wire::random_hex(11)),
            redirect_uris: redirect_uris.iter().map(|uri| uri.to_string()).collect(),
            state: Mutex::new(State {
                registry: Registry::default(),
                token_lifetime: kind.profile().expires_in,
                issue_refresh_tokens: true,
                fault: Fault::None,
                userinfo_fault: Fault::None,
                usage_fault: Fault::None,
                revocation_fault: Fault::None,
                chaos: Chaos::default(),
                delay: Duration::ZERO,
                answer_delay: Duration::ZERO,
                requests: Vec::new(),
                rejections: Vec::new(),
                charges: Vec::new(),
            }),
        });
        let app = kind
            .routes()
            .route(revocation::PATH, axum::routing::post(revocation::endpoint))
            .fallback(recording::no_route)
            .method_not_allowed_fallback(recording::wrong_method)
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&inner),
                recording::record,
            ))
            .with_state(Arc::clone(&inner));
        tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake provider server stopped");
        });
        FakeProvider { inner }
    }

    pub fn kind(&self) -> Kind {
        self.inner.kind
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    pub fn client_id(&self) -> String {
        self.inner.client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.inner.client_secret.clone()
    }

    pub fn authorize_url(&self) -> String {
        self.url(self.profile().authorize_path)
    }

    pub fn token_url(&self) -> String {
        self.url(self.profile().token_path)
    }

    /// ARES `/v1/user`, ARterra `/api/auth/info`.
    pub fn userinfo_url(&self) -> Option<String> {
        self.profile().userinfo_path.map(|path| self.url(path))
    }

    /// ARES `/v1/partner/usage`.
    pub fn usage_url(&self) -> Option<String> {
        self.profile().usage_path.map(|path| self.url(path))
    }

    /// Registers a verified user account. `credits` matters for ARES; `password` for ARterra's
    /// password grant (whose username is the email).
    pub fn add_user(&self, user_id: &str, email: &str, password: &str, credits: i64) {
        self.inner.lock().registry.add_user(User {
            id: user_id.to_owned(),
            email: email.to_owned(),
            password: password.to_owned(),
            credits,
            email_verified: true,
        });
    }

    /// The user's credits now (ARES usage deducts them). Panics for an unknown user.
    pub fn credits_of(&self, user_id: &str) -> i64 {
        let state = self.inner.lock();
        let user = state.registry.user(user_id);
        user.unwrap_or_else(|| panic!("no user `{user_id}` at the fake"))
            .credits
    }

    /// The user follows the link in the verification email (after `sign_up_unverified`).
    pub fn verify_email(&self, user_id: &str) {
        let mut state = self.inner.lock();
        let user = state.registry.user_mut(user_id);
        user.unwrap_or_else(|| panic!("no user `{user_id}` at the fake"))
            .email_verified = true;
    }

    /// The end user approves: a real HTTP GET of `authorization_url` (which must point at this fake)
    /// with `x-fake-user`; returns the callback's query parameters (`code`, `state`). Panics with the
    /// fake's reason if it rejected the URL.
    pub async fn approve(
        &self,
        authorization_url: &str,
        user_id: &str,
    ) -> BTreeMap<String, String> {
        let headers = [(authorize::USER_HEADER, user_id)];
        self.visit(authorization_url, &headers, "code").await
    }

    /// The end user clicks "deny": the callback has `error=access_denied`, `error_description`, `state`.
    pub async fn deny(&self, authorization_url: &str) -> BTreeMap<String, String> {
        let headers = [(authorize::DECISION_HEADER, authorize::DENY)];
        let params = self.visit(authorization_url, &headers, "error").await;
        assert_eq!(params["error"], "access_denied", "deny got {params:?}");
        params
    }

    /// ARterra only: a brand-new user signs up and must verify the email first; the callback has
    /// `userId` (and `state`) but no code.
    pub async fn sign_up_unverified(
        &self,
        authorization_url: &str,
        new_user_id: &str,
    ) -> BTreeMap<String, String> {
        let headers = [
            (authorize::DECISION_HEADER, authorize::SIGN_UP_UNVERIFIED),
            (authorize::USER_HEADER, new_user_id),
        ];
        self.visit(authorization_url, &headers, "userId").await
    }

    /// `expires_in` of tokens issued from now on (`None` omits it). An access token is also rejected by
    /// userinfo/usage once that many seconds have passed.
    pub fn set_token_lifetime(&self, secs: Option<u64>) {
        self.inner.lock().token_lifetime = secs;
    }

    /// Whether code and password grants from now on answer with a refresh token (RFC 6749 §4.1.4
    /// and §5.1 make it optional). Without one, the connection cannot be refreshed: the fake knows
    /// no refresh token to accept.
    pub fn set_issue_refresh_tokens(&self, issue: bool) {
        self.inner.lock().issue_refresh_tokens = issue;
    }

    /// Misbehaviour of the token endpoint (after it checked the request's format and client).
    pub fn set_fault(&self, fault: Fault) {
        self.inner.lock().fault = fault;
    }

    /// Misbehaviour of the user endpoint (after it checked that a bearer token was sent).
    pub fn set_userinfo_fault(&self, fault: Fault) {
        self.inner.lock().userinfo_fault = fault;
    }

    /// The RFC 7009 revocation endpoint every fake offers.
    pub fn revocation_url(&self) -> String {
        self.url(revocation::PATH)
    }

    /// Misbehaviour of the revocation endpoint (after it checked the request).
    pub fn set_revocation_fault(&self, fault: Fault) {
        self.inner.lock().revocation_fault = fault;
    }

    /// Whether `token` still works here as an access token.
    pub fn access_token_works(&self, token: &str) -> bool {
        self.inner.lock().registry.bearer_user(token).is_ok()
    }

    /// Whether `token` still works here as a refresh token.
    pub fn refresh_token_works(&self, token: &str) -> bool {
        self.inner.lock().registry.refresh_grant(token).is_ok()
    }

    /// Revocation requests received, with their `token_type_hint`, in order.
    pub fn revocations(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == revocation::PATH)
            .map(|r| {
                url::form_urlencoded::parse(r.body.as_bytes())
                    .find(|(k, _)| k == "token_type_hint")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Misbehaviour of the usage endpoint (ARES; after it checked that a bearer token was sent).
    pub fn set_usage_fault(&self, fault: Fault) {
        self.inner.lock().usage_fault = fault;
    }

    /// Added before the token endpoint looks at a request (a slow provider).
    pub fn set_delay(&self, d: Duration) {
        self.inner.lock().delay = d;
    }

    /// Added after a token request was processed (code used, refresh token
    /// rotated) and before the answer is sent: the window in which a client
    /// crash loses the new tokens.
    pub fn set_answer_delay(&self, d: Duration) {
        self.inner.lock().answer_delay = d;
    }

    /// Every access token issued so far is rejected (401) by userinfo/usage.
    pub fn expire_access_tokens(&self) {
        self.inner.lock().registry.expire_all_access_tokens();
    }

    /// Every refresh token issued so far answers `invalid_grant`.
    pub fn revoke_refresh_tokens(&self) {
        self.inner.lock().registry.revoke_all_refresh_tokens();
    }

    /// Makes every code issued so far `by` older, to test code expiry without waiting.
    pub fn age_codes(&self, by: Duration) {
        self.inner.lock().registry.age_codes(by);
    }

    /// Every request received, in arrival order, including rejected and unanswered ones.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.lock().requests.clone()
    }

    /// Requests to the token endpoint with that `grant_type`, accepted or not.
    pub fn token_requests(&self, grant_type: &str) -> usize {
        let token_path = self.profile().token_path;
        let state = self.inner.lock();
        let requests = state.requests.iter().filter(|r| r.path == token_path);
        requests
            .filter(|r| wire::grant_type_of(&r.body).as_deref() == Some(grant_type))
            .count()
    }

    /// Refresh requests that got new tokens.
    pub fn refreshes_accepted(&self) -> usize {
        self.inner.lock().registry.refreshes_accepted
    }

    /// Requests to the usage endpoint, accepted or not.
    pub fn usage_calls(&self) -> usize {
        let Some(usage_path) = self.profile().usage_path else {
            return 0;
        };
        self.inner
            .lock()
            .requests
            .iter()
            .filter(|r| r.path == usage_path)
            .count()
    }

    /// Every usage charged so far, in order: the provider's own ledger, which also holds charges
    /// whose answer never left (the client went away while it was delayed).
    pub fn charges(&self) -> Vec<Charge> {
        self.inner.lock().charges.clone()
    }

    /// Why each rejected request was rejected, as "METHOD /path: reason".
    pub fn rejections(&self) -> Vec<String> {
        self.inner.lock().rejections.clone()
    }

    /// The access token issued most recently.
    pub fn last_access_token(&self) -> Option<String> {
        self.inner.lock().registry.last_access_token.clone()
    }

    /// The refresh token issued most recently (for Aries, which does not rotate, the flow's one).
    pub fn last_refresh_token(&self) -> Option<String> {
        self.inner.lock().registry.last_refresh_token.clone()
    }

    /// The user a refresh token was issued to, rotated out or not; `None` for a token never issued.
    pub fn refresh_token_user(&self, refresh_token: &str) -> Option<String> {
        self.inner.lock().registry.refresh_token_user(refresh_token)
    }

    fn profile(&self) -> &'static Profile {
        self.inner.kind.profile()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.base_url)
    }

    /// The browser visit behind approve/deny/sign-up: GET, expect a redirect back to a registered
    /// redirect URI carrying `expected`, return the callback's query.
    async fn visit(
        &self,
        authorization_url: &str,
        headers: &[(&str, &str)],
        expected: &str,
    ) -> BTreeMap<String, String> {
        let name = self.profile().name;
        let url = Url::parse(authorization_url).unwrap_or_else(|e| {
            panic!("authorization URL `{authorization_url}` does not parse: {e}")
        });
        let base = Url::parse(&self.inner.base_url).expect("the base URL is a URL");
        assert_eq!(
            url.origin(),
            base.origin(),
            "authorization URL `{authorization_url}` is not at the {name} fake"
        );
        let page = browser::get(&url, headers)
            .await
            .unwrap_or_else(|e| panic!("GET {authorization_url} at the {name} fake failed: {e}"));
        let last_rejection = || self.rejections().last().cloned().unwrap_or_default();
        let location = match (page.status, page.location) {
            (302, Some(location)) => location,
            (status, _) => panic!(
                "{name} fake refused `{authorization_url}` with {status}: {}",
                page.body
            ),
        };
        let mut callback =
            Url::parse(&location).unwrap_or_else(|e| panic!("Location `{location}`: {e}"));
        let params: BTreeMap<String, String> = callback.query_pairs().into_owned().collect();
        callback.set_query(None);
        let to_client = self.inner.redirect_uris.iter().any(|uri| {
            let uri = Url::parse(uri).expect("redirect URIs are checked at start");
            (uri.origin(), uri.path()) == (callback.origin(), callback.path())
        });
        assert!(
            to_client,
            "{name} fake sent the user to {location}, not back to the client: {}",
            last_rejection()
        );
        assert!(
            params.contains_key(expected),
            "{name} fake redirected back without `{expected}`: {params:?} ({})",
            last_rejection()
        );
        params
    }
}
