//! Tests of the fake providers themselves: the requests each document describes are accepted, and the
//! ones it would refuse are refused (and explained in `rejections()`). If these pass, a broker test that
//! passes against the fakes has spoken each provider's wire format.

mod authorize_page;
mod resources;
mod support;
mod token_endpoint;

use serde_json::Value;

use crate::fake::Kind;
use support::*;

#[tokio::test]
async fn documented_flows_are_accepted_by_every_provider() {
    for kind in Kind::ALL {
        let fake = start(kind).await;
        let callback = fake.approve(&link(&fake), USER).await;
        assert_eq!(callback["state"], "st-1");
        let answer = exchange(&fake, &callback["code"]).await;
        assert_eq!(answer.status, 200, "{kind:?}: {}", answer.text);
        assert_eq!(answer.json["token_type"], "Bearer");
        assert_eq!(answer.headers["cache-control"], "no-store");
        let expected_lifetime = match kind {
            Kind::Ares => 3599,
            Kind::Askara => 86400,
            Kind::Aries | Kind::Arterra => 3600,
        };
        assert_eq!(answer.json["expires_in"], expected_lifetime, "{kind:?}");
        let access = answer.json["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        let refresh_token = answer.json["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned();
        assert_eq!(fake.last_access_token(), Some(access.clone()));
        if kind == Kind::Askara {
            assert_eq!(
                access.split('.').count(),
                3,
                "Askara access tokens are JWTs: {access}"
            );
        }
        if fake.userinfo_url().is_some() {
            let info = userinfo(&fake, &access).await;
            assert_eq!(
                (info.status, info.json["id"].as_str()),
                (200, Some(USER)),
                "{}",
                info.text
            );
        }

        let answer = refresh(&fake, &refresh_token).await;
        assert_eq!(answer.status, 200, "{kind:?}: {}", answer.text);
        let rotated = answer.json.get("refresh_token").and_then(Value::as_str);
        match kind {
            Kind::Aries => assert_eq!(rotated, None, "Aries does not rotate"),
            _ => assert!(
                rotated.is_some_and(|new| new != refresh_token),
                "{kind:?} rotates"
            ),
        }
        assert_eq!(
            fake.last_refresh_token().as_deref(),
            Some(rotated.unwrap_or(&refresh_token))
        );
        assert_eq!(fake.rejections(), Vec::<String>::new(), "{kind:?}");
        assert_eq!(fake.token_requests("authorization_code"), 1);
        assert_eq!(fake.token_requests("refresh_token"), 1);
        assert_eq!(fake.refreshes_accepted(), 1);
        assert!(fake.requests().iter().all(|r| r.status != 0));
    }
}
