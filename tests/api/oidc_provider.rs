//! `kind = "oidc"` against a real, certified OpenID Provider: the npm
//! package `oidc-provider` (tests/oidc, installed by `.ci/oidc-setup`), with
//! RS256 id_tokens, PKCE required, `iss` in every callback, rotating refresh
//! tokens and a revocation endpoint, all found through discovery.

use std::{collections::BTreeMap, process::Stdio, sync::Arc, time::Duration};

use authbroker::pb::{self, ProviderRevocation};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

const CLIENT_ID: &str = "authbroker-test";
const CLIENT_SECRET: &str = "oidc-client-secret-0123456789abcdef";
const ACCOUNT: &str = "alice-123";

/// The running provider; killed when dropped.
struct OpenIdProvider {
    issuer: String,
    _child: Child,
}

/// Installs the harness (a no-op when it is), or says why it cannot run:
/// a failure under CI, a skip with a line locally.
fn installed(test: &str) -> bool {
    let setup = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/oidc-setup");
    let ok = std::process::Command::new(setup)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!(
                "{test}: .ci/oidc-setup failed and CI is set: the OpenID Provider tests must run"
            );
        }
        eprintln!("SKIPPED {test}: .ci/oidc-setup failed (needs Node.js >= 20.19 and npm)");
    }
    ok
}

impl OpenIdProvider {
    async fn start() -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc/provider.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .env("OIDC_PORT", "0")
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_REDIRECT_URI", CALLBACK)
            .env("OIDC_ACCOUNT", ACCOUNT)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs tests/oidc/provider.mjs");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(20),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("the provider starts within 20 s")
        .expect("read its stdout");
        let issuer = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self {
            issuer,
            _child: child,
        }
    }
}

/// The end user's browser: follows the provider's redirects by hand,
/// keeping its cookies, until it is sent back to the redirect URI.
struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new() -> Self {
        // This crate's reqwest has rustls without a built-in provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        Self {
            http,
            cookies: BTreeMap::new(),
        }
    }

    /// The callback's query parameters.
    async fn authorize(&mut self, authorization_url: &str) -> BTreeMap<String, String> {
        let mut url = url::Url::parse(authorization_url).expect("url");
        for _ in 0..12 {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let response = self
                .http
                .get(url.clone())
                .header("cookie", cookie)
                .send()
                .await
                .expect("the provider answers");
            // In header order: a cookie may be cleared, then set again.
            for set in response.headers().get_all("set-cookie") {
                let pair = set
                    .to_str()
                    .unwrap_or_default()
                    .split(';')
                    .next()
                    .unwrap_or_default();
                if let Some((name, value)) = pair.split_once('=') {
                    self.cookies
                        .insert(name.trim().to_owned(), value.to_owned());
                }
            }
            let status = response.status();
            let location = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned);
            let Some(location) = location else {
                let body = response.text().await.unwrap_or_default();
                panic!("{status} without a redirect from {url}: {body}");
            };
            let next = url.join(&location).expect("location");
            if next.as_str().starts_with(CALLBACK) {
                return next.query_pairs().into_owned().collect();
            }
            url = next;
        }
        panic!("not back at the redirect URI after 12 redirects");
    }

    /// The provider's userinfo answer status for `access_token`.
    async fn userinfo_status(&self, issuer: &str, access_token: &str) -> u16 {
        self.http
            .get(format!("{issuer}/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("userinfo answers")
            .status()
            .as_u16()
    }
}

fn providers(issuer: String) -> ExtraProviders {
    Arc::new(move |_: &Fakes| {
        let section = |id: &str, issuer: &str| {
            format!(
                "[providers.{id}]\nkind = \"oidc\"\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\n\
                 client_secret = \"{CLIENT_SECRET}\"\nredirect_uris = [\"{CALLBACK}\"]\n"
            )
        };
        // The second names the same issuer with a trailing slash: not
        // identical, so its discovery document is another issuer's.
        section("idp", &issuer) + &section("idp_mismatched", &format!("{issuer}/"))
    })
}

fn begin_request(provider: &str) -> pb::BeginAuthRequest {
    pb::BeginAuthRequest {
        provider: provider.into(),
        subject: "end-user-1".into(),
        redirect_uri: CALLBACK.into(),
        scopes: vec!["openid".into(), "email".into()],
        ..Default::default()
    }
}

async fn a_certified_openid_provider(backend: Backend) {
    if !installed("oidc_provider::a_certified_openid_provider") {
        return;
    }
    let idp = OpenIdProvider::start().await;
    let app = TestApp::spawn_with(
        backend,
        Options {
            extra_providers: Some(providers(idp.issuer.clone())),
            ..Options::default()
        },
    )
    .await;
    let mut client = app.billing().await;

    // Code flow with PKCE and a nonce; the id_token (RS256) checked; its
    // sub is the account.
    let mut browser = Browser::new();
    let begun = client
        .begin_auth(begin_request("idp"))
        .await
        .expect("BeginAuth")
        .into_inner();
    assert!(
        begun
            .authorization_url
            .starts_with(&format!("{}/auth?", idp.issuer))
    );
    let params = browser.authorize(&begun.authorization_url).await;
    assert_eq!(params.get("iss"), Some(&idp.issuer), "RFC 9207");
    let conn = complete(&mut client, params).await;
    assert_eq!(conn.provider_user_id, ACCOUNT);

    let first = token(&mut client, &conn.id, 0).await.expect("token");
    assert_eq!(
        browser
            .userinfo_status(&idp.issuer, &first.access_token)
            .await,
        200
    );
    let info = user_info(&mut client, &conn.id).await;
    assert!(
        format!("{info:?}").contains(&format!("{ACCOUNT}@example.test")),
        "{info:?}"
    );

    // Refresh: the provider rotates the refresh token and sends a new
    // id_token, which must name the same account. Twice, so the rotated
    // token was stored (the provider revokes the grant on reuse).
    for _ in 0..2 {
        let refreshed = force_refresh(&mut client, &conn.id)
            .await
            .expect("refreshed");
        assert_ne!(refreshed.access_token, first.access_token);
        assert_eq!(
            browser
                .userinfo_status(&idp.issuer, &refreshed.access_token)
                .await,
            200
        );
    }
    let current = token(&mut client, &conn.id, 0).await.expect("token");

    // A callback naming another issuer: refused before any code is sent.
    let mut other_browser = Browser::new();
    let begun = client
        .begin_auth(begin_request("idp"))
        .await
        .expect("BeginAuth")
        .into_inner();
    let mut params = other_browser.authorize(&begun.authorization_url).await;
    params.insert("iss".into(), "https://evil.example.com".into());
    let refused = client
        .complete_auth(callback(params))
        .await
        .expect_err("mix-up refused");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let info = refused.get_details_error_info().expect("error info");
    assert_eq!(
        info.metadata.get("state").map(String::as_str),
        Some("issuer_mismatch")
    );

    // An issuer that is not exactly the one discovery names: never usable.
    let refused = client
        .begin_auth(begin_request("idp_mismatched"))
        .await
        .expect_err("mismatched issuer");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let info = refused.get_details_error_info().expect("error info");
    assert_eq!(
        info.metadata.get("step").map(String::as_str),
        Some("discovery")
    );
    assert!(app.logs().contains("names issuer"), "the log says why");

    // Revocation at the discovered endpoint: the token stops working there.
    let revoked = revoke(&mut client, &conn.id).await;
    assert_eq!(revoked.provider_revocation(), ProviderRevocation::Confirmed);
    assert_eq!(
        browser
            .userinfo_status(&idp.issuer, &current.access_token)
            .await,
        401,
        "revoked at the provider"
    );
    let logs = app.logs();
    assert!(!logs.contains(CLIENT_SECRET));
    assert!(!logs.contains(&current.access_token));
}

on_both!(a_certified_openid_provider);
