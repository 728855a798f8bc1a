//! `kind = "oidc"` against the strict fake OpenID provider: endpoints from
//! discovery, the code flow with PKCE and a nonce, every id_token checked
//! (signature against the cached key set, iss, aud, exp, nonce) with its
//! `sub` as the account, refreshes held to the same account, revocation at
//! the discovered endpoint, and the issuer named in the callback (RFC 9207).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use authbroker::pb::{self, ProviderRevocation};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::{
    fake_oidc::{FakeOidc, Forgery},
    helpers::*,
};

const ACCOUNT: &str = "oidc-user-7";

/// The `[providers.oidc]` section: the issuer and the client, nothing else.
fn oidc_provider(fake: &FakeOidc) -> ExtraProviders {
    let (issuer, id, secret) = (fake.issuer(), fake.client_id(), fake.client_secret());
    Arc::new(move |_: &Fakes| {
        format!(
            "[providers.oidc]\nkind = \"oidc\"\nissuer = \"{issuer}\"\nclient_id = \"{id}\"\n\
             client_secret = \"{secret}\"\nredirect_uris = [\"{CALLBACK}\"]\n"
        )
    })
}

async fn start(backend: Backend, fake: &FakeOidc) -> TestApp {
    TestApp::spawn_with(
        backend,
        Options {
            extra_providers: Some(oidc_provider(fake)),
            ..Options::default()
        },
    )
    .await
}

async fn begin_oidc(client: &mut Client, subject: &str) -> pb::BeginAuthResponse {
    begin(client, "oidc", subject).await
}

/// Begin, approve at the fake, CompleteAuth: the raw answer.
async fn attempt(
    client: &mut Client,
    fake: &FakeOidc,
    subject: &str,
) -> Result<pb::CompleteAuthResponse, Status> {
    let begun = client
        .begin_auth(pb::BeginAuthRequest {
            provider: "oidc".into(),
            subject: subject.into(),
            redirect_uri: CALLBACK.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let params = fake.approve(&begun.authorization_url).await;
    client
        .complete_auth(callback(params))
        .await
        .map(|r| r.into_inner())
}

fn connection(answer: Result<pb::CompleteAuthResponse, Status>) -> pb::Connection {
    match answer.expect("CompleteAuth").outcome {
        Some(pb::complete_auth_response::Outcome::Connection(c)) => c,
        other => panic!("expected a connection, got {other:?}"),
    }
}

fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

fn metadata(status: &Status, key: &str) -> String {
    status
        .get_details_error_info()
        .and_then(|info| info.metadata.get(key).cloned())
        .unwrap_or_default()
}

async fn connections(client: &mut Client) -> usize {
    client
        .list_connections(pb::ListConnectionsRequest::default())
        .await
        .expect("ListConnections")
        .into_inner()
        .connections
        .len()
}

async fn the_whole_flow_with_discovery(backend: Backend) {
    let fake = FakeOidc::start(CALLBACK, ACCOUNT).await;
    let app = start(backend, &fake).await;
    let mut client = app.billing().await;
    assert_eq!(fake.discovery_fetches(), 1, "discovered once at start");

    let begun = begin_oidc(&mut client, "end-user-1").await;
    let url = url::Url::parse(&begun.authorization_url).expect("url");
    assert!(
        begun
            .authorization_url
            .starts_with(&format!("{}/authorize?", fake.issuer())),
        "the discovered authorization endpoint: {url}"
    );
    let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["scope"], "openid", "openid by default");
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(!query["nonce"].is_empty());

    let params = fake.approve(&begun.authorization_url).await;
    assert_eq!(fake.last_nonce().as_deref(), Some(query["nonce"].as_str()));
    assert_eq!(params.get("iss"), Some(&fake.issuer()), "RFC 9207");
    let conn = complete(&mut client, params).await;
    assert_eq!(conn.provider_user_id, ACCOUNT, "the id_token's sub");
    assert_eq!(fake.jwks_fetches(), 1);

    let served = token(&mut client, &conn.id, 0).await.expect("token");
    assert!(fake.access_token_works(&served.access_token));
    let info = user_info(&mut client, &conn.id).await;
    assert!(format!("{info:?}").contains(ACCOUNT), "{info:?}");

    // A refresh brings a new id_token for the same account: accepted, key
    // set still cached.
    let refreshed = force_refresh(&mut client, &conn.id).await.expect("refresh");
    assert_ne!(refreshed.access_token, served.access_token);
    assert_eq!(fake.token_requests("refresh_token"), 1);
    assert_eq!(fake.jwks_fetches(), 1, "the key set is cached");

    let revoked = revoke(&mut client, &conn.id).await;
    assert_eq!(
        revoked.provider_revocation(),
        ProviderRevocation::Confirmed,
        "at the discovered revocation endpoint"
    );
    assert_eq!(fake.revocations(), ["refresh_token", "access_token"]);
    assert!(!fake.access_token_works(&refreshed.access_token));
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
}

async fn every_forged_id_token_is_refused(backend: Backend) {
    let fake = FakeOidc::start(CALLBACK, ACCOUNT).await;
    let app = start(backend, &fake).await;
    let mut client = app.billing().await;
    let forgeries = [
        (Forgery::WrongKey, "signature"),
        (Forgery::WrongIssuer, "is not the issuer"),
        (Forgery::WrongAudience, "aud"),
        (Forgery::Expired, "expired"),
        (Forgery::WrongNonce, "nonce"),
        (Forgery::AlgNone, "alg"),
        (Forgery::MissingIdToken, "no id_token"),
    ];
    for (forgery, needle) in forgeries {
        fake.set_forgery(forgery.clone());
        let refused = attempt(&mut client, &fake, "end-user-1")
            .await
            .expect_err("refused");
        assert_eq!(
            refused.code(),
            Code::Unavailable,
            "{forgery:?}: {refused:?}"
        );
        assert_eq!(reason(&refused), "PROVIDER_INVALID_RESPONSE", "{forgery:?}");
        assert_eq!(metadata(&refused, "step"), "id_token", "{forgery:?}");
        assert!(
            refused.message().contains(needle),
            "{forgery:?}: {:?} does not say {needle:?}",
            refused.message()
        );
        assert_eq!(
            connections(&mut client).await,
            0,
            "{forgery:?}: nothing stored"
        );
    }
    // Nothing the forgeries carried reached the logs or errors.
    let logs = app.logs();
    assert!(!logs.contains(&fake.client_secret()));
    assert!(!logs.contains("eyJ"), "no JWS in the logs");

    fake.set_forgery(Forgery::None);
    let conn = connection(attempt(&mut client, &fake, "end-user-1").await);
    assert_eq!(conn.provider_user_id, ACCOUNT);
}

async fn a_callback_from_another_issuer_is_refused(backend: Backend) {
    let fake = FakeOidc::start(CALLBACK, ACCOUNT).await;
    let app = start(backend, &fake).await;
    let mut client = app.billing().await;
    for iss in [Some("https://evil.example.com".to_owned()), None] {
        fake.set_callback_iss(iss.clone());
        let refused = attempt(&mut client, &fake, "end-user-1")
            .await
            .expect_err("refused");
        assert_eq!(
            refused.code(),
            Code::FailedPrecondition,
            "{iss:?}: {refused:?}"
        );
        assert_eq!(reason(&refused), "STATE_INVALID");
        assert_eq!(
            metadata(&refused, "state"),
            "issuer_mismatch",
            "{iss:?}: the issuer says it sends iss, so a missing one is refused too"
        );
    }
    assert_eq!(fake.token_requests("authorization_code"), 0, "no code sent");
}

async fn a_refresh_naming_another_account_needs_reauth(backend: Backend) {
    let fake = FakeOidc::start(CALLBACK, ACCOUNT).await;
    let app = start(backend, &fake).await;
    let mut client = app.billing().await;
    let conn = connection(attempt(&mut client, &fake, "end-user-1").await);
    let before = token(&mut client, &conn.id, 0).await.expect("token");

    fake.set_forgery(Forgery::WrongSubject);
    let refused = force_refresh(&mut client, &conn.id)
        .await
        .expect_err("another account's tokens are not served");
    assert_eq!(reason(&refused), "CONNECTION_NEEDS_REAUTH", "{refused:?}");
    assert!(
        refused.message().contains("another account"),
        "{:?}",
        refused.message()
    );
    let stored = fetch(&mut client, &conn.id).await;
    assert_eq!(stored.status(), pb::ConnectionStatus::NeedsReauth);
    let later = token(&mut client, &conn.id, 0)
        .await
        .expect_err("still refused");
    assert_eq!(reason(&later), "CONNECTION_NEEDS_REAUTH");
    assert!(
        fake.access_token_works(&before.access_token),
        "the first account's token is untouched at the provider"
    );
}

async fn a_rotated_signing_key_is_fetched(backend: Backend) {
    let fake = FakeOidc::start(CALLBACK, ACCOUNT).await;
    let app = start(backend, &fake).await;
    let mut client = app.billing().await;
    let conn = connection(attempt(&mut client, &fake, "end-user-1").await);
    assert_eq!(fake.jwks_fetches(), 1);

    fake.rotate_signing_key();
    // Within a second of the last fetch the cache does not fetch again: the
    // refreshed id_token's key is unknown, which proves nothing against the
    // account, so the rotated tokens are kept and served.
    let kept = force_refresh(&mut client, &conn.id)
        .await
        .expect("tokens kept though their id_token could not be checked yet");
    assert!(fake.access_token_works(&kept.access_token));
    assert_eq!(
        fetch(&mut client, &conn.id).await.status(),
        pb::ConnectionStatus::Active
    );
    assert_eq!(fake.jwks_fetches(), 1);
    assert!(app.logs().contains("refreshed id_token not checked"));
    // A second later the unknown key makes it fetch the key set again.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    force_refresh(&mut client, &conn.id)
        .await
        .expect("the id_token signed with the new key is accepted");
    assert_eq!(fake.jwks_fetches(), 2);
    let second = connection(attempt(&mut client, &fake, "end-user-2").await);
    assert_eq!(second.provider_user_id, ACCOUNT);
    assert_eq!(fake.jwks_fetches(), 2, "the new key set is cached");
}

async fn an_issuer_that_cannot_be_discovered_is_unavailable_until_it_can(backend: Backend) {
    let fake = FakeOidc::start(CALLBACK, ACCOUNT).await;
    fake.set_discovery_issuer(Some("https://other-issuer.example.com".into()));
    let app = start(backend, &fake).await;
    let mut client = app.billing().await;

    let refused = attempt(&mut client, &fake, "end-user-1")
        .await
        .expect_err("not discovered");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert_eq!(reason(&refused), "PROVIDER_UNAVAILABLE");
    assert_eq!(metadata(&refused, "step"), "discovery");
    assert!(
        app.logs().contains("other-issuer.example.com"),
        "the log says why"
    );
    // The other providers serve meanwhile.
    connect(&app, &mut client, "ares", "end-user-1").await;

    // Retried in the background (1 s, then 2 s, ...).
    fake.set_discovery_issuer(None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match attempt(&mut client, &fake, "end-user-1").await {
            Ok(answer) => {
                assert_eq!(connection(Ok(answer)).provider_user_id, ACCOUNT);
                break;
            }
            Err(e) if tokio::time::Instant::now() < deadline => {
                assert_eq!(reason(&e), "PROVIDER_UNAVAILABLE", "{e:?}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("still not discovered: {e:?}"),
        }
    }
}

on_both!(
    the_whole_flow_with_discovery,
    every_forged_id_token_is_refused,
    a_callback_from_another_issuer_is_refused,
    a_refresh_naming_another_account_needs_reauth,
    a_rotated_signing_key_is_fetched,
    an_issuer_that_cannot_be_discovered_is_unavailable_until_it_can,
);
