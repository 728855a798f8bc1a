//! Each provider's full story: begin -> callback -> token -> expiry -> refresh.

use authbroker::pb::{self, ConnectionStatus, complete_auth_response::Outcome};
use tonic::Code;

use crate::helpers::*;

/// Begin, approve, complete; then the token is served from storage while it
/// lives long enough and refreshed with the provider's exact format when not.
async fn full_flow(backend: Backend, provider: &str, rotates: bool) {
    let app = TestApp::spawn(backend).await;
    let fake = app.fakes.get(provider);
    fake.set_token_lifetime(Some(600));
    let mut client = app.billing().await;

    let begun = begin(&mut client, provider, "end-user-1").await;
    assert!(
        begun.authorization_url.starts_with(&fake.authorize_url()),
        "{}",
        begun.authorization_url
    );
    assert!(begun.state.len() >= 43, "state carries 256 bits");
    let params = fake.approve(&begun.authorization_url, USER).await;
    let conn = complete(&mut client, params).await;
    assert_eq!(conn.provider, provider);
    assert_eq!(conn.subject, "end-user-1");
    assert_eq!(conn.status(), ConnectionStatus::Active);
    if fake.userinfo_url().is_some() {
        assert!(
            !conn.provider_user_id.is_empty(),
            "provider user id learned from the user endpoint"
        );
    }
    assert_eq!(fake.token_requests("authorization_code"), 1);

    // Stored token, valid for 600 s: served without a provider call.
    let first = token(&mut client, &conn.id, 60).await.expect("token");
    assert_eq!(Some(first.access_token.clone()), fake.last_access_token());
    assert_eq!(first.token_type, "Bearer");
    assert_eq!(fake.token_requests("refresh_token"), 0);

    // The caller needs it for longer than it lives: refresh.
    let refreshed = token(&mut client, &conn.id, 900)
        .await
        .expect("refreshed token");
    assert_ne!(refreshed.access_token, first.access_token);
    assert_eq!(
        Some(refreshed.access_token.clone()),
        fake.last_access_token()
    );
    assert_eq!(fake.refreshes_accepted(), 1);

    // Expiry: tokens now die at once, so the next call must refresh again,
    // with the rotated refresh token where the provider rotates.
    fake.set_token_lifetime(Some(1));
    let short = token(&mut client, &conn.id, 900)
        .await
        .expect("second refresh");
    assert_eq!(fake.refreshes_accepted(), 2);
    let after_expiry = token(&mut client, &conn.id, 30)
        .await
        .expect("refresh after expiry");
    assert_ne!(after_expiry.access_token, short.access_token);
    assert_eq!(fake.refreshes_accepted(), 3);
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());

    let refresh_bodies: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.body.contains("refresh_token"))
        .collect();
    assert_eq!(refresh_bodies.len(), 3);
    if rotates {
        // Every refresh used a different (the most recent) refresh token.
        let mut used: Vec<_> = refresh_bodies.iter().map(|r| r.body.clone()).collect();
        used.dedup();
        assert_eq!(used.len(), 3, "rotated refresh tokens are used");
    } else {
        assert!(
            refresh_bodies.windows(2).all(|w| w[0].body == w[1].body),
            "the one refresh token is kept"
        );
    }
}

async fn ares_full_flow(backend: Backend) {
    full_flow(backend, "ares", true).await;
}

async fn aries_full_flow(backend: Backend) {
    full_flow(backend, "aries", false).await;
}

async fn askara_full_flow(backend: Backend) {
    full_flow(backend, "askara", true).await;
}

async fn arterra_full_flow(backend: Backend) {
    full_flow(backend, "arterra", true).await;
}

async fn default_scopes_follow_each_document(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    for (provider, expected) in [
        ("ares", Some("read write")),
        ("askara", Some("profile organization")),
        ("arterra", None),
    ] {
        let begun = begin(&mut client, provider, "u").await;
        let url = url::Url::parse(&begun.authorization_url).expect("url");
        let scope = url
            .query_pairs()
            .find(|(k, _)| k == "scope")
            .map(|(_, v)| v.into_owned());
        assert_eq!(scope.as_deref(), expected, "{provider}");
    }
    let custom = pb::BeginAuthRequest {
        provider: "ares".into(),
        subject: "u".into(),
        redirect_uri: CALLBACK.into(),
        scopes: vec!["read".into()],
        sign_up: false,
        ..Default::default()
    };
    let conn = connect_via(&mut client, &app.fakes.ares, custom, USER).await;
    assert_eq!(conn.scopes, vec!["read".to_string()]);
}

async fn reconnecting_the_same_account_updates_the_connection(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let first = connect(&app, &mut client, "ares", "end-user-1").await;
    let second = connect(&app, &mut client, "ares", "end-user-1").await;
    assert_eq!(first.id, second.id);
    let list = client
        .list_connections(pb::ListConnectionsRequest {
            subject: "end-user-1".into(),
            provider: "ares".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.connections.len(), 1);
    let served = token(&mut client, &first.id, 60).await.expect("token");
    assert_eq!(
        Some(served.access_token),
        app.fakes.ares.last_access_token(),
        "the newest tokens are stored"
    );
    // Another subject gets its own connection.
    let other = connect(&app, &mut client, "ares", "end-user-2").await;
    assert_ne!(other.id, first.id);
}

async fn denial_is_an_outcome_not_an_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    for provider in ["ares", "aries", "askara"] {
        let begun = begin(&mut client, provider, "u").await;
        let params = app.fakes.get(provider).deny(&begun.authorization_url).await;
        let outcome = client
            .complete_auth(callback(params))
            .await
            .expect("complete")
            .into_inner()
            .outcome;
        match outcome {
            Some(Outcome::Denied(d)) => assert_eq!(d.error, "access_denied", "{provider}"),
            other => panic!("{provider}: expected denied, got {other:?}"),
        }
        assert_eq!(
            app.fakes.get(provider).token_requests("authorization_code"),
            0
        );
    }
}

async fn arterra_sign_up_link_and_pending_verification(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let begun = client
        .begin_auth(pb::BeginAuthRequest {
            provider: "arterra".into(),
            subject: "newcomer".into(),
            sign_up: true,
            ..Default::default()
        })
        .await
        .expect("sign-up link")
        .into_inner();
    assert!(
        begun.authorization_url.contains("response_type=signup"),
        "{}",
        begun.authorization_url
    );

    let params = app
        .fakes
        .arterra
        .sign_up_unverified(&begun.authorization_url, "new-user-7")
        .await;
    assert!(params.contains_key("userId"));
    let outcome = client
        .complete_auth(callback(params))
        .await
        .expect("complete")
        .into_inner()
        .outcome;
    match outcome {
        Some(Outcome::PendingVerification(p)) => assert_eq!(p.provider_user_id, "new-user-7"),
        other => panic!("expected pending verification, got {other:?}"),
    }
    assert_eq!(app.fakes.arterra.token_requests("authorization_code"), 0);

    // After verifying the email the user signs in normally.
    app.fakes.arterra.verify_email("new-user-7");
    let request = pb::BeginAuthRequest {
        provider: "arterra".into(),
        subject: "newcomer".into(),
        redirect_uri: CALLBACK.into(),
        ..Default::default()
    };
    let conn = connect_via(&mut client, &app.fakes.arterra, request, "new-user-7").await;
    assert_eq!(conn.provider_user_id, "new-user-7");
    assert!(
        app.fakes.arterra.rejections().is_empty(),
        "{:?}",
        app.fakes.arterra.rejections()
    );
}

async fn sign_up_is_refused_where_there_are_no_sign_up_links(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let result = client
        .begin_auth(pb::BeginAuthRequest {
            provider: "ares".into(),
            subject: "u".into(),
            sign_up: true,
            redirect_uri: CALLBACK.into(),
            ..Default::default()
        })
        .await;
    assert_status(result, Code::InvalidArgument, "sign_up");
}

async fn password_grant_only_where_offered_and_allowed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = client
        .sign_in_with_password(pb::SignInWithPasswordRequest {
            provider: "arterra".into(),
            subject: "pw-user".into(),
            username: EMAIL.into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("password grant")
        .into_inner()
        .connection
        .expect("connection");
    assert_eq!(conn.provider_user_id, USER);
    let served = token(&mut client, &conn.id, 60).await.expect("token");
    assert_eq!(
        Some(served.access_token),
        app.fakes.arterra.last_access_token()
    );

    let wrong = client
        .sign_in_with_password(pb::SignInWithPasswordRequest {
            provider: "arterra".into(),
            subject: "pw-user".into(),
            username: EMAIL.into(),
            password: "wrong password".into(),
        })
        .await;
    assert_status(wrong, Code::FailedPrecondition, "invalid_grant");

    let elsewhere = client
        .sign_in_with_password(pb::SignInWithPasswordRequest {
            provider: "ares".into(),
            subject: "pw-user".into(),
            username: EMAIL.into(),
            password: PASSWORD.into(),
        })
        .await;
    assert_status(elsewhere, Code::FailedPrecondition, "password grant");
    assert_eq!(app.fakes.ares.token_requests("password"), 0);
}

async fn password_grant_is_off_unless_configured(backend: Backend) {
    // A second ARterra provider, declared without allow_password_grant.
    let options = Options {
        extra_providers: Some(std::sync::Arc::new(|fakes: &Fakes| {
            let fake = &fakes.arterra;
            format!(
                "[providers.arterra_plain]\nkind = \"arterra\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n\
                 redirect_uris = [\"{CALLBACK}\"]\ntoken_url = \"{}\"\n",
                fake.client_id(),
                fake.client_secret(),
                fake.token_url()
            )
        })),
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    let mut client = app.billing().await;
    let result = client
        .sign_in_with_password(pb::SignInWithPasswordRequest {
            provider: "arterra_plain".into(),
            subject: "u".into(),
            username: EMAIL.into(),
            password: PASSWORD.into(),
        })
        .await;
    assert_status(result, Code::FailedPrecondition, "allow_password_grant");
}

/// BeginAuth for subject "u"; an empty redirect URI is left to the server.
fn begin_request(provider: &str, redirect_uri: &str) -> pb::BeginAuthRequest {
    pb::BeginAuthRequest {
        provider: provider.into(),
        subject: "u".into(),
        redirect_uri: redirect_uri.into(),
        ..Default::default()
    }
}

async fn redirect_uri_must_be_registered_or_unambiguous(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let unregistered = client
        .begin_auth(begin_request("ares", "https://evil.example/cb"))
        .await;
    assert_status(unregistered, Code::InvalidArgument, "redirect_uri");
    // ARES has two: one must be named.
    let ambiguous = client.begin_auth(begin_request("ares", "")).await;
    assert_status(ambiguous, Code::InvalidArgument, "redirect_uri");
    // Askara has one: it may be omitted.
    let implied = begin_request("askara", "");
    let conn = connect_via(&mut client, &app.fakes.askara, implied, USER).await;
    assert_eq!(conn.provider, "askara");
    // The second ARES redirect URI works end to end, refresh included.
    let other = begin_request("ares", OTHER_CALLBACK);
    let conn = connect_via(&mut client, &app.fakes.ares, other, USER).await;
    token(&mut client, &conn.id, 86_400)
        .await
        .expect("refresh with the flow's redirect_uri");
    assert!(
        app.fakes.ares.rejections().is_empty(),
        "{:?}",
        app.fakes.ares.rejections()
    );
}

async fn the_generic_oauth2_kind_is_configured_by_knobs_alone(backend: Backend) {
    // Askara's dialect (JSON body, credentials in the body, no redirect_uri on
    // refresh) and ARterra's (Basic, minimal JSON) described as plain oauth2.
    let options = Options {
        extra_providers: Some(std::sync::Arc::new(|fakes: &Fakes| {
            let (askara, arterra) = (&fakes.askara, &fakes.arterra);
            format!(
                "[providers.custom_json]\nkind = \"oauth2\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n\
                 redirect_uris = [\"{CALLBACK}\"]\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\n\
                 client_auth = \"body\"\nbody_encoding = \"json\"\ndefault_scopes = [\"profile\", \"organization\"]\n\
                 [providers.custom_basic]\nkind = \"oauth2\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n\
                 redirect_uris = [\"{CALLBACK}\"]\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\nuserinfo_url = \"{}\"\n\
                 user_id_field = \"id\"\nclient_auth = \"basic\"\nbody_encoding = \"json\"\ncode_redirect_uri = false\npkce = false\n",
                askara.client_id(),
                askara.client_secret(),
                askara.authorize_url(),
                askara.token_url(),
                arterra.client_id(),
                arterra.client_secret(),
                arterra.authorize_url(),
                arterra.token_url(),
                arterra.userinfo_url().expect("info endpoint"),
            )
        })),
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    let mut client = app.billing().await;
    for (provider, fake) in [
        ("custom_json", &app.fakes.askara),
        ("custom_basic", &app.fakes.arterra),
    ] {
        let conn = connect_via(&mut client, fake, begin_request(provider, CALLBACK), USER).await;
        if provider == "custom_basic" {
            assert_eq!(
                conn.provider_user_id, USER,
                "learned from the configured userinfo_url"
            );
        }
        let refreshed = force_refresh(&mut client, &conn.id).await.expect("refresh");
        assert_eq!(
            Some(refreshed.access_token),
            fake.last_access_token(),
            "{provider}"
        );
        assert!(
            fake.rejections().is_empty(),
            "{provider}: {:?}",
            fake.rejections()
        );
        // PKCE S256 unless turned off: the verifier sent with the code is
        // the one whose challenge the authorization URL carried.
        let requests = fake.requests();
        let authorize = requests
            .iter()
            .rev()
            .find(|r| r.method == "GET" && r.query.contains("state="))
            .expect("an authorization request");
        let query: std::collections::BTreeMap<String, String> =
            url::form_urlencoded::parse(authorize.query.as_bytes())
                .into_owned()
                .collect();
        let exchange = requests
            .iter()
            .rev()
            .find(|r| r.body.contains("authorization_code"))
            .expect("a code exchange");
        let verifier = serde_json::from_str::<serde_json::Value>(&exchange.body)
            .ok()
            .and_then(|b| b["code_verifier"].as_str().map(str::to_owned));
        if provider == "custom_json" {
            use base64::Engine as _;
            use sha2::Digest as _;
            assert_eq!(
                query.get("code_challenge_method").map(String::as_str),
                Some("S256")
            );
            let verifier = verifier.expect("a code_verifier with the code");
            let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()));
            assert_eq!(query.get("code_challenge"), Some(&challenge));
        } else {
            assert!(!query.contains_key("code_challenge"), "pkce = false");
            assert_eq!(verifier, None);
        }
    }
}

on_both!(
    ares_full_flow,
    aries_full_flow,
    askara_full_flow,
    arterra_full_flow,
    default_scopes_follow_each_document,
    reconnecting_the_same_account_updates_the_connection,
    denial_is_an_outcome_not_an_error,
    arterra_sign_up_link_and_pending_verification,
    sign_up_is_refused_where_there_are_no_sign_up_links,
    password_grant_only_where_offered_and_allowed,
    password_grant_is_off_unless_configured,
    redirect_uri_must_be_registered_or_unambiguous,
    the_generic_oauth2_kind_is_configured_by_knobs_alone,
);
