//! The state parameter: single-use, expiring, bound to its caller; a bad
//! state never lets a request reach the provider.

use std::time::Duration;

use tonic::Code;

use crate::{helpers::*, in_process::InProcessApp};

async fn a_used_state_cannot_be_replayed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let begun = begin(&mut client, "ares", "u").await;
    let params = app.fakes.ares.approve(&begun.authorization_url, USER).await;
    complete(&mut client, params.clone()).await;
    let replay = client.complete_auth(callback(params)).await;
    assert_status(replay, Code::FailedPrecondition, "state");
    assert_eq!(
        app.fakes.ares.token_requests("authorization_code"),
        1,
        "the replay reached no provider"
    );
}

async fn an_unknown_state_is_refused_without_a_provider_call(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let begun = begin(&mut client, "ares", "u").await;
    let mut params = app.fakes.ares.approve(&begun.authorization_url, USER).await;
    params.insert("state".into(), "forged-state-value".into());
    assert_status(
        client.complete_auth(callback(params)).await,
        Code::FailedPrecondition,
        "state",
    );
    assert_eq!(app.fakes.ares.token_requests("authorization_code"), 0);
}

async fn an_expired_state_is_refused(backend: Backend) {
    let app = InProcessApp::spawn(
        backend,
        Options {
            extra_config: "state_ttl_secs = 60".into(),
            ..Options::default()
        },
    )
    .await;
    let mut client = app.billing().await;
    let begun = begin(&mut client, "askara", "u").await;
    let params = app
        .fakes
        .askara
        .approve(&begun.authorization_url, USER)
        .await;
    app.clock.advance(Duration::from_secs(61));
    assert_status(
        client.complete_auth(callback(params)).await,
        Code::FailedPrecondition,
        "expired",
    );
    assert_eq!(app.fakes.askara.token_requests("authorization_code"), 0);
    app.stop().await;
}

async fn a_state_begun_by_another_caller_is_answered_as_unknown_and_left_usable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut billing = app.billing().await;
    let mut search = app.search().await;
    let begun = begin(&mut billing, "aries", "u").await;
    let params = app
        .fakes
        .aries
        .approve(&begun.authorization_url, USER)
        .await;
    let foreign = search
        .complete_auth(callback(params.clone()))
        .await
        .expect_err("refused");
    // Answered exactly like a state that never existed: the answer must not
    // tell a caller that someone else's state is live.
    let mut forged = params.clone();
    forged.insert("state".into(), "a-state-nobody-began".into());
    let unknown = search
        .complete_auth(callback(forged))
        .await
        .expect_err("refused");
    assert_eq!(foreign.code(), Code::FailedPrecondition);
    assert_eq!(
        (foreign.code(), foreign.message(), foreign.details()),
        (unknown.code(), unknown.message(), unknown.details()),
        "{foreign:?} vs {unknown:?}"
    );
    assert_eq!(app.fakes.aries.token_requests("authorization_code"), 0);
    // The rightful caller still completes it.
    complete(&mut billing, params).await;
}

async fn concurrent_completions_of_one_state_exchange_the_code_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let begun = begin(&mut client, "ares", "u").await;
    let params = app.fakes.ares.approve(&begun.authorization_url, USER).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut c = client.clone();
        let request = callback(params.clone());
        tasks.push(tokio::spawn(async move { c.complete_auth(request).await }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("join") {
            Ok(_) => ok += 1,
            Err(s) => assert_eq!(s.code(), Code::FailedPrecondition),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(app.fakes.ares.token_requests("authorization_code"), 1);
}

/// RFC 9207: with the provider's issuer configured, a callback whose `iss`
/// names another issuer (a mix-up) is refused and its code never sent;
/// with `require_iss`, so is one without `iss`; the right one completes.
async fn a_callback_from_another_issuer_is_refused(backend: Backend) {
    let issuer = "https://ares.example.com";
    let options = Options {
        extra_providers: Some(std::sync::Arc::new(move |fakes: &Fakes| {
            let fake = &fakes.ares;
            format!(
                "[providers.ares_iss]\nkind = \"ares\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n\
                 redirect_uris = [\"{CALLBACK}\"]\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\n\
                 userinfo_url = \"{}\"\nissuer = \"{issuer}\"\nrequire_iss = true\n",
                fake.client_id(),
                fake.client_secret(),
                fake.authorize_url(),
                fake.token_url(),
                fake.userinfo_url().expect("user endpoint"),
            )
        })),
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    let mut client = app.billing().await;
    for iss in [Some("https://evil.example.com"), None] {
        let begun = begin(&mut client, "ares_iss", "u").await;
        let mut params = app.fakes.ares.approve(&begun.authorization_url, USER).await;
        if let Some(iss) = iss {
            params.insert("iss".into(), iss.into());
        }
        let refused = client
            .complete_auth(callback(params))
            .await
            .expect_err("another issuer");
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
        let info = tonic_types::StatusExt::get_details_error_info(&refused).expect("info");
        assert_eq!(info.metadata["state"], "issuer_mismatch", "{refused:?}");
    }
    assert_eq!(app.fakes.ares.token_requests("authorization_code"), 0);
    let begun = begin(&mut client, "ares_iss", "u").await;
    let mut params = app.fakes.ares.approve(&begun.authorization_url, USER).await;
    params.insert("iss".into(), issuer.into());
    complete(&mut client, params).await;
}

on_both!(
    a_callback_from_another_issuer_is_refused,
    a_used_state_cannot_be_replayed,
    an_unknown_state_is_refused_without_a_provider_call,
    an_expired_state_is_refused,
    a_state_begun_by_another_caller_is_answered_as_unknown_and_left_usable,
    concurrent_completions_of_one_state_exchange_the_code_once,
);
