//! The reasons of the server's own limits and policy, on a server that runs
//! one call at a time: apart from the other groups, whose waits are timed.

use std::time::Duration;

use authbroker::pb::{self, ErrorReason};
use tonic::Code;

use super::expect::*;
use crate::helpers::*;

pub(super) async fn limits_and_policy(backend: Backend) -> Cases {
    use ErrorReason as R;
    let mut cases = Cases::default();
    // RATE_LIMITED and OVERLOADED, on a server whose billing caller may make
    // one call every 2 s and which runs one call at a time.
    let limited = TestApp::spawn_with(
        backend,
        Options {
            extra_config: "[server]\nmax_in_flight = 1".into(),
            caller_config: vec![
                (
                    "billing",
                    "rate_limit_per_second = 0.5\nrate_limit_burst = 1".into(),
                ),
                ("search", "allow_password_grant = false".into()),
            ],
            ..Options::default()
        },
    )
    .await;
    let mut limited_billing = limited.billing().await;
    let mut limited_search = limited.search().await;
    let slow = connect(&limited, &mut limited_search, "arterra", "u").await;
    let _ = limited_billing
        .get_connection(get_connection(&slow.id))
        .await;
    cases.push(
        "a second call within the caller's rate limit interval",
        limited_billing
            .get_connection(get_connection(&slow.id))
            .await,
        Expected::new(R::RateLimited, Code::ResourceExhausted)
            .meta("caller", "billing")
            .retry(Duration::from_secs(2)),
    );
    // POLICY_DENIED: a caller whose policy forbids the password grant.
    cases.push(
        "SignInWithPassword by a caller without the password grant",
        limited_search
            .sign_in_with_password(pb::SignInWithPasswordRequest {
                provider: "arterra".into(),
                subject: "u".into(),
                username: EMAIL.into(),
                password: PASSWORD.into(),
            })
            .await,
        Expected::new(R::PolicyDenied, Code::PermissionDenied)
            .meta("caller", "search")
            .meta("rule", "allow_password_grant"),
    );
    limited.expire(&slow.id).await;
    limited
        .fakes
        .arterra
        .set_delay(Duration::from_millis(1_500));
    let in_flight = {
        let (mut c, id) = (limited_search.clone(), slow.id.clone());
        tokio::spawn(async move { token(&mut c, &id, 60).await })
    };
    while limited.fakes.arterra.token_requests("refresh_token") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cases.push(
        "a call while another fills the server's capacity",
        limited_search
            .get_connection(get_connection(&slow.id))
            .await,
        Expected::new(R::Overloaded, Code::ResourceExhausted).retry(Duration::from_millis(200)),
    );
    in_flight.await.expect("join").expect("the admitted call");

    cases
}
