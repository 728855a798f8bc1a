//! Bearer-protected endpoints, the ARES credits API, and requests to nowhere.

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use super::support::*;
use crate::fake::Kind;

#[tokio::test]
async fn user_endpoints_need_a_live_access_token() {
    for kind in [Kind::Ares, Kind::Arterra] {
        let fake = start(kind).await;
        let (access, _) = tokens(&fake).await;
        let url = fake.userinfo_url().expect("a user endpoint");
        assert_error(&send(client().get(&url)).await, 401, "invalid_token");
        assert_eq!(userinfo(&fake, &access).await.status, 200);
        fake.expire_access_tokens();
        assert_error(&userinfo(&fake, &access).await, 401, "invalid_token");

        // A lifetime of 0 s: the token is dead on arrival; no lifetime: expires_in is omitted.
        fake.set_token_lifetime(Some(0));
        let (access, _) = tokens(&fake).await;
        assert_error(&userinfo(&fake, &access).await, 401, "invalid_token");
        fake.set_token_lifetime(None);
        let answer = exchange(&fake, &fresh_code(&fake).await).await;
        assert!(answer.json.get("expires_in").is_none(), "{}", answer.text);
    }
}

#[tokio::test]
async fn ares_usage_is_checked_and_deducts_credits() {
    let fake = start(Kind::Ares).await;
    let (access, _) = tokens(&fake).await;
    let usage = |body: Value, content_type: &str| {
        let request = client()
            .post(fake.usage_url().expect("ARES has a usage endpoint"))
            .bearer_auth(&access);
        send(
            request
                .header(CONTENT_TYPE, content_type)
                .body(body.to_string()),
        )
    };
    let id = fake.client_id();
    let ok = usage(
        json!({ "client_id": id, "usage": "test-button", "credits": 3 }),
        "application/json",
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(
        (
            ok.json["success"].as_bool(),
            ok.json["remaining_credits"].as_i64()
        ),
        (Some(true), Some(7))
    );
    assert_eq!(fake.credits_of(USER), 7);

    let refused = [
        (
            json!({ "client_id": id, "credits": 1 }),
            400,
            "Missing required fields",
        ),
        (
            json!({ "client_id": id, "usage": "", "credits": 1 }),
            400,
            "Missing required fields",
        ),
        (
            json!({ "client_id": id, "usage": "test-button" }),
            400,
            "Missing required fields",
        ),
        (
            json!({ "client_id": "other", "usage": "test-button", "credits": 1 }),
            403,
            "Invalid client_id",
        ),
        (
            json!({ "client_id": id, "usage": "test-button", "credits": -1 }),
            400,
            "Invalid credits",
        ),
        (
            json!({ "client_id": id, "usage": "test-button", "credits": 8 }),
            400,
            "Insufficient credits",
        ),
    ];
    for (body, status, message) in &refused {
        assert_error(
            &usage(body.clone(), "application/json").await,
            *status,
            message,
        );
    }
    let body = json!({ "client_id": id, "usage": "test-button", "credits": 1 });
    assert_eq!(usage(body, "text/plain").await.status, 415);
    assert_eq!(fake.credits_of(USER), 7);
    assert_eq!(fake.usage_calls(), refused.len() + 2);
    assert_eq!(fake.rejections().len(), refused.len() + 1);
}

#[tokio::test]
async fn unknown_paths_and_methods_are_recorded_rejections() {
    let fake = start(Kind::Aries).await;
    assert_eq!(send(client().get(fake.token_url())).await.status, 405);
    assert_eq!(
        send(client().get(format!("{}/v1/user", fake.base_url())))
            .await
            .status,
        404
    );
    let statuses: Vec<_> = fake
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.status))
        .collect();
    assert_eq!(statuses, [("GET".to_owned(), 405), ("GET".to_owned(), 404)]);
    assert_eq!(fake.rejections().len(), 2);
    assert_eq!(fake.token_requests("authorization_code"), 0);
}
