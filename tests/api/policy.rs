//! Per-caller policy through the real server: each rule refuses with
//! PERMISSION_DENIED / POLICY_DENIED naming itself, the daily credit budget
//! holds under concurrent reports, a narrowed policy applies to connections
//! made before it, and a caller may present any of its tokens.

use authbroker::pb;
use tonic::Code;

use crate::helpers::*;

/// Asserts a POLICY_DENIED refusal by `rule`.
fn assert_denied<T: std::fmt::Debug>(result: Result<T, tonic::Status>, rule: &str) {
    let status = result.expect_err("denied");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let info = tonic_types::StatusExt::get_details_error_info(&status).expect("info");
    assert_eq!(info.reason, "POLICY_DENIED", "{status:?}");
    assert_eq!(info.metadata["rule"], rule, "{status:?}");
    assert_eq!(info.metadata["caller"], "billing", "{status:?}");
}

const POLICY: &str = "providers = [\"ares\", \"arterra\"]\n\
     rpcs = [\"BeginAuth\", \"CompleteAuth\", \"SignInWithPassword\", \"GetAccessToken\", \
     \"GetUserInfo\", \"RecordUsage\", \"GetConnection\", \"ListConnections\", \"RevokeConnection\"]\n\
     scopes = [\"read\", \"write\"]\n\
     allow_password_grant = false\n\
     max_credits_per_call = 5\n\
     max_credits_per_day = 8\n";

async fn each_rule_refuses_by_name(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Options {
            caller_config: vec![(
                "billing",
                format!("{POLICY}redirect_uris = [\"{CALLBACK}\"]"),
            )],
            ..Options::default()
        },
    )
    .await;
    let mut billing = app.billing().await;
    let begin = |provider: &str, redirect_uri: &str, scopes: &[&str]| pb::BeginAuthRequest {
        provider: provider.into(),
        subject: "u".into(),
        redirect_uri: redirect_uri.into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        sign_up: false,
        ..Default::default()
    };
    assert_denied(
        billing.begin_auth(begin("askara", CALLBACK, &[])).await,
        "providers",
    );
    assert_denied(
        billing.begin_auth(begin("ares", OTHER_CALLBACK, &[])).await,
        "redirect_uris",
    );
    assert_denied(
        billing
            .begin_auth(begin("ares", CALLBACK, &["read", "admin"]))
            .await,
        "scopes",
    );
    assert_denied(
        billing
            .sign_in_with_password(pb::SignInWithPasswordRequest {
                provider: "arterra".into(),
                subject: "u".into(),
                username: EMAIL.into(),
                password: PASSWORD.into(),
            })
            .await,
        "allow_password_grant",
    );
    assert_denied(
        billing
            .resolve_usage(pb::ResolveUsageRequest {
                usage_id: "0195f3c4-0000-7000-8000-0000000000a1".into(),
                outcome: pb::UsageOutcome::Charged.into(),
            })
            .await,
        "rpcs",
    );
    // Within every rule: a connection with the provider's default scopes.
    let conn = connect(&app, &mut billing, "ares", "u").await;
    assert_denied(
        billing.record_usage(usage(&conn.id, "too-big", 6.0)).await,
        "max_credits_per_call",
    );

    // Twelve reports of one credit at once against a budget of eight:
    // exactly eight are charged, whichever replica or task runs them.
    let calls = app.fakes.ares.usage_calls();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let mut c = billing.clone();
        let request = usage(&conn.id, &format!("budget-{i}"), 1.0);
        tasks.push(tokio::spawn(async move { c.record_usage(request).await }));
    }
    let (mut ok, mut denied) = (0, 0);
    for task in tasks {
        match task.await.expect("join") {
            Ok(_) => ok += 1,
            Err(status) => {
                assert_denied::<()>(Err(status), "max_credits_per_day");
                denied += 1;
            }
        }
    }
    assert_eq!((ok, denied), (8, 4));
    assert_eq!(app.fakes.ares.usage_calls(), calls + 8);
    assert_eq!(app.fakes.ares.credits_of(USER), CREDITS - 8);

    // Another caller is not bound by billing's policy.
    let mut search = app.search().await;
    let other = connect(&app, &mut search, "askara", "u").await;
    token(&mut search, &other.id, 60)
        .await
        .expect("unrestricted");
}

/// A policy narrowed after a connection was made applies to it: its token,
/// its user info and a flow begun before are refused; revoking stays allowed.
async fn a_narrowed_policy_applies_to_existing_connections(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut billing = app.billing().await;
    let askara = connect(&app, &mut billing, "askara", "u").await;
    let begun = begin(&mut billing, "askara", "v").await;
    let params = app
        .fakes
        .askara
        .approve(&begun.authorization_url, USER)
        .await;
    let options = Options {
        caller_config: vec![("billing", "providers = [\"ares\"]".into())],
        ..Options::default()
    };
    let app = app.restart_with(options).await;
    let mut billing = app.billing().await;
    assert_denied(token(&mut billing, &askara.id, 60).await, "providers");
    assert_denied(
        billing
            .get_user_info(pb::GetUserInfoRequest {
                connection_id: askara.id.clone(),
            })
            .await,
        "providers",
    );
    assert_denied(billing.complete_auth(callback(params)).await, "providers");
    billing
        .revoke_connection(pb::RevokeConnectionRequest {
            connection_id: askara.id.clone(),
        })
        .await
        .expect("a caller may always revoke its own connection");
}

/// A caller with a second token (a rotation under way) is the same caller
/// with either.
async fn a_caller_may_present_any_of_its_tokens(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Options {
            caller_config: vec![(
                "billing",
                "tokens = [\"rotated-billing-token-0001\"]".into(),
            )],
            ..Options::default()
        },
    )
    .await;
    let mut old = app.billing().await;
    let conn = connect(&app, &mut old, "ares", "u").await;
    let mut new = app.client(Some("rotated-billing-token-0001")).await;
    let fetched = new
        .get_connection(pb::GetConnectionRequest {
            connection_id: conn.id.clone(),
        })
        .await
        .expect("the same caller")
        .into_inner();
    assert_eq!(fetched.connection.expect("connection").id, conn.id);
}

on_both!(
    a_caller_may_present_any_of_its_tokens,
    each_rule_refuses_by_name,
    a_narrowed_policy_applies_to_existing_connections,
);
