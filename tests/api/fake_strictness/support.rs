//! Helpers of the fake-provider tests: requests built the way each provider's document builds them,
//! so a test changes one thing and shows that the fake refuses it.

use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::fake::{FakeProvider, Kind};

pub(super) const CALLBACK: &str = "http://127.0.0.1:9/callback";
pub(super) const OTHER_CALLBACK: &str = "http://127.0.0.1:9/other";
pub(super) const USER: &str = "user-1";
pub(super) const EMAIL: &str = "user-1@example.test";
pub(super) const PASSWORD: &str = "correct horse";

pub(super) async fn start(kind: Kind) -> FakeProvider {
    let fake = FakeProvider::start(kind, &[CALLBACK, OTHER_CALLBACK]).await;
    fake.add_user(USER, EMAIL, PASSWORD, 10);
    fake
}

pub(super) fn client_with(builder: reqwest::ClientBuilder) -> reqwest::Client {
    // This crate's reqwest uses rustls without a built-in provider: even a plain-http client needs one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    builder.no_proxy().build().expect("build a reqwest client")
}

pub(super) fn client() -> reqwest::Client {
    client_with(reqwest::Client::builder().timeout(Duration::from_secs(10)))
}

/// An answer, with the body parsed as JSON when it is JSON (`Value::Null` otherwise).
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) headers: reqwest::header::HeaderMap,
    pub(super) text: String,
    pub(super) json: Value,
}

pub(super) async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the fake answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a readable body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

/// Asserts an RFC 6749 §5.2 error (or the `message` of the ARES partner API).
pub(super) fn assert_error(answer: &Answer, status: u16, error: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    let actual = answer
        .json
        .get("error")
        .or_else(|| answer.json.get("message"));
    assert_eq!(
        actual.and_then(Value::as_str),
        Some(error),
        "{}",
        answer.text
    );
}

pub(super) fn basic(id: &str, secret: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    format!("Basic {encoded}")
}

pub(super) fn form(
    request: reqwest::RequestBuilder,
    fields: &[(String, String)],
) -> reqwest::RequestBuilder {
    let body = serde_urlencoded::to_string(fields).expect("form-encode");
    request
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
}

pub(super) fn json_body(
    request: reqwest::RequestBuilder,
    fields: &[(String, String)],
) -> reqwest::RequestBuilder {
    let object: serde_json::Map<String, Value> =
        fields.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    request
        .header(CONTENT_TYPE, "application/json")
        .body(Value::Object(object).to_string())
}

pub(super) fn owned(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A token request the way the provider's document sends it: right encoding, right client auth.
pub(super) async fn token(fake: &FakeProvider, fields: &[(&str, &str)]) -> Answer {
    let mut fields = owned(fields);
    let request = client().post(fake.token_url());
    let in_body = [
        ("client_id".to_owned(), fake.client_id()),
        ("client_secret".to_owned(), fake.client_secret()),
    ];
    send(match fake.kind() {
        Kind::Ares | Kind::Aries => {
            fields.extend(in_body);
            form(request, &fields)
        }
        Kind::Askara => {
            fields.extend(in_body);
            json_body(request, &fields)
        }
        Kind::Arterra => {
            let request = request.header(
                AUTHORIZATION,
                basic(&fake.client_id(), &fake.client_secret()),
            );
            json_body(request, &fields)
        }
    })
    .await
}

/// The authorize link as the provider's document builds it, with `changes` applied (`None` removes).
pub(super) fn link_with(fake: &FakeProvider, changes: &[(&str, Option<&str>)]) -> String {
    let mut params = vec![
        ("client_id", fake.client_id()),
        ("redirect_uri", CALLBACK.to_owned()),
        ("response_type", "code".to_owned()),
        ("state", "st-1".to_owned()),
    ];
    match fake.kind() {
        Kind::Ares => params.push(("scope", "read write".to_owned())),
        Kind::Askara => params.push(("scope", "profile organization".to_owned())),
        Kind::Aries | Kind::Arterra => {}
    }
    for (name, value) in changes {
        params.retain(|(n, _)| n != name);
        if let Some(value) = value {
            params.push((name, value.to_string()));
        }
    }
    url::Url::parse_with_params(&fake.authorize_url(), &params)
        .expect("a URL")
        .to_string()
}

pub(super) fn link(fake: &FakeProvider) -> String {
    link_with(fake, &[])
}

pub(super) async fn fresh_code(fake: &FakeProvider) -> String {
    fake.approve(&link(fake), USER).await["code"].clone()
}

/// The code exchange as documented (ARterra's body has no redirect_uri, doc 004 lines 102-105).
pub(super) async fn exchange(fake: &FakeProvider, code: &str) -> Answer {
    let mut fields = vec![("grant_type", "authorization_code"), ("code", code)];
    if fake.kind() != Kind::Arterra {
        fields.push(("redirect_uri", CALLBACK));
    }
    token(fake, &fields).await
}

/// The refresh as documented (ARES and Aries repeat the redirect_uri).
pub(super) async fn refresh(fake: &FakeProvider, refresh_token: &str) -> Answer {
    let mut fields = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    if matches!(fake.kind(), Kind::Ares | Kind::Aries) {
        fields.push(("redirect_uri", CALLBACK));
    }
    token(fake, &fields).await
}

/// A complete flow: (access token, refresh token).
pub(super) async fn tokens(fake: &FakeProvider) -> (String, String) {
    let answer = exchange(fake, &fresh_code(fake).await).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let field = |name: &str| answer.json[name].as_str().expect("token field").to_owned();
    (field("access_token"), field("refresh_token"))
}

pub(super) async fn userinfo(fake: &FakeProvider, access_token: &str) -> Answer {
    let url = fake.userinfo_url().expect("a user endpoint");
    send(client().get(url).bearer_auth(access_token)).await
}

pub(super) async fn exchange_with(
    client: &reqwest::Client,
    fake: &FakeProvider,
    code: &str,
) -> reqwest::Result<reqwest::Response> {
    let fields = owned(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("client_id", &fake.client_id()),
        ("client_secret", &fake.client_secret()),
    ]);
    form(client.post(fake.token_url()), &fields).send().await
}
