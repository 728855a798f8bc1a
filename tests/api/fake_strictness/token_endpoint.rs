//! The token endpoint: encodings, client authentication, grants, rotation, faults.

use std::time::{Duration, Instant};

use super::support::*;
use crate::fake::{Fault, Kind};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

#[tokio::test]
async fn the_wrong_body_encoding_is_rejected_without_using_the_code() {
    for kind in Kind::ALL {
        let fake = start(kind).await;
        let code = fresh_code(&fake).await;
        let fields = owned(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("client_id", &fake.client_id()),
            ("client_secret", &fake.client_secret()),
        ]);
        let request = client().post(fake.token_url());
        let wrong = match kind {
            Kind::Ares | Kind::Aries => json_body(request, &fields),
            Kind::Askara => form(request, &fields),
            Kind::Arterra => form(
                request.header(
                    AUTHORIZATION,
                    basic(&fake.client_id(), &fake.client_secret()),
                ),
                &fields[..3],
            ),
        };
        assert_error(&send(wrong).await, 400, "invalid_request");
        assert_eq!(fake.rejections().len(), 1, "{kind:?}");
        assert_eq!(
            exchange(&fake, &code).await.status,
            200,
            "{kind:?}: the code is still good"
        );
    }
}

#[tokio::test]
async fn missing_or_wrong_client_authentication_is_invalid_client() {
    for kind in Kind::ALL {
        let fake = start(kind).await;
        let code = fresh_code(&fake).await;
        let mut fields = owned(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ]);
        let request = || client().post(fake.token_url());
        let (missing, wrong) = match kind {
            Kind::Ares | Kind::Aries | Kind::Askara => {
                fields.push(("client_id".into(), fake.client_id()));
                let mut wrong_fields = fields.clone();
                wrong_fields.push(("client_secret".into(), "not-the-secret".into()));
                if kind == Kind::Askara {
                    (
                        json_body(request(), &fields),
                        json_body(request(), &wrong_fields),
                    )
                } else {
                    (form(request(), &fields), form(request(), &wrong_fields))
                }
            }
            Kind::Arterra => {
                let wrong =
                    request().header(AUTHORIZATION, basic(&fake.client_id(), "not-the-secret"));
                (json_body(request(), &fields), json_body(wrong, &fields))
            }
        };
        assert_error(&send(missing).await, 401, "invalid_client");
        assert_error(&send(wrong).await, 401, "invalid_client");
        assert_eq!(fake.rejections().len(), 2, "{kind:?}");
    }
}

#[tokio::test]
async fn client_credentials_go_in_exactly_one_place() {
    // ARterra: Basic header only (doc 004 line 96), never in the body.
    let fake = start(Kind::Arterra).await;
    let code = fresh_code(&fake).await;
    let request = client().post(fake.token_url()).header(
        AUTHORIZATION,
        basic(&fake.client_id(), &fake.client_secret()),
    );
    let fields = owned(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("client_id", &fake.client_id()),
    ]);
    assert_error(
        &send(json_body(request, &fields)).await,
        400,
        "invalid_request",
    );

    // ARES: body only; a Basic header as well is a second method (RFC 6749 §2.3).
    let fake = start(Kind::Ares).await;
    let code = fresh_code(&fake).await;
    let request = client().post(fake.token_url()).header(
        AUTHORIZATION,
        basic(&fake.client_id(), &fake.client_secret()),
    );
    let fields = owned(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", CALLBACK),
        ("client_id", &fake.client_id()),
        ("client_secret", &fake.client_secret()),
    ]);
    assert_error(&send(form(request, &fields)).await, 400, "invalid_request");
}

#[tokio::test]
async fn ares_and_aries_refreshes_need_the_redirect_uri() {
    for kind in [Kind::Ares, Kind::Aries] {
        let fake = start(kind).await;
        let (_, refresh_token) = tokens(&fake).await;
        let without = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ];
        assert_error(&token(&fake, &without).await, 400, "invalid_request");
        let other = [without[0], without[1], ("redirect_uri", OTHER_CALLBACK)];
        let answer = token(&fake, &other).await;
        if kind == Kind::Aries {
            // Doc 002 line 29: "Must match the redirect URI used in the original flow".
            assert_error(&answer, 400, "invalid_grant");
        } else {
            // Doc 000 line 170 only lists it: any registered URI will do.
            assert_eq!(answer.status, 200, "{}", answer.text);
        }
    }
}

#[tokio::test]
async fn a_code_works_once_for_its_own_redirect_uri() {
    for kind in Kind::ALL {
        let fake = start(kind).await;
        let code = fresh_code(&fake).await;
        let mut fields = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", OTHER_CALLBACK),
        ];
        assert_error(&token(&fake, &fields).await, 400, "invalid_grant");
        fields[2].1 = CALLBACK;
        assert_eq!(token(&fake, &fields).await.status, 200, "{kind:?}");
        assert_error(&token(&fake, &fields).await, 400, "invalid_grant");
        assert_eq!(
            fake.rejections().len(),
            2,
            "{kind:?}: {:?}",
            fake.rejections()
        );
    }
}

#[tokio::test]
async fn codes_expire_after_the_documented_lifetime() {
    for (kind, lifetime_secs) in [
        (Kind::Ares, 600),
        (Kind::Aries, 600),
        (Kind::Askara, 600),
        (Kind::Arterra, 180),
    ] {
        let fake = start(kind).await;
        let young = fresh_code(&fake).await;
        fake.age_codes(Duration::from_secs(lifetime_secs - 5));
        assert_eq!(exchange(&fake, &young).await.status, 200, "{kind:?}");
        let old = fresh_code(&fake).await;
        fake.age_codes(Duration::from_secs(lifetime_secs + 1));
        assert_error(&exchange(&fake, &old).await, 400, "invalid_grant");
    }
}

#[tokio::test]
async fn refresh_tokens_rotate_except_at_aries() {
    for kind in Kind::ALL {
        let fake = start(kind).await;
        let (_, first) = tokens(&fake).await;
        assert_eq!(refresh(&fake, &first).await.status, 200);
        let again = refresh(&fake, &first).await;
        if kind == Kind::Aries {
            assert_eq!(
                again.status, 200,
                "Aries keeps the refresh token: {}",
                again.text
            );
        } else {
            assert_error(&again, 400, "invalid_grant");
            let newest = fake.last_refresh_token().expect("a rotated refresh token");
            assert_eq!(refresh(&fake, &newest).await.status, 200, "{kind:?}");
        }
        fake.revoke_refresh_tokens();
        let newest = fake.last_refresh_token().expect("a refresh token");
        assert_error(&refresh(&fake, &newest).await, 400, "invalid_grant");
    }
}

#[tokio::test]
async fn the_password_grant_is_arterra_only() {
    let fake = start(Kind::Arterra).await;
    let grant = [
        ("grant_type", "password"),
        ("username", EMAIL),
        ("password", PASSWORD),
    ];
    let answer = token(&fake, &grant).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.json["refresh_token"].is_string());
    let wrong = [grant[0], grant[1], ("password", "guess")];
    assert_error(&token(&fake, &wrong).await, 400, "invalid_grant");

    let fake = start(Kind::Ares).await;
    assert_error(&token(&fake, &grant).await, 400, "unsupported_grant_type");
}

#[tokio::test]
async fn token_faults_answer_as_configured_without_using_the_code() {
    let fake = start(Kind::Ares).await;
    let code = fresh_code(&fake).await;
    let cases = [
        (Fault::Html, 200, "text/html"),
        (Fault::MalformedJson, 200, "application/json"),
        (Fault::ServerError, 503, "text/plain"),
        (Fault::MissingAccessToken, 200, "application/json"),
        (
            Fault::TooManyRequests {
                retry_after_secs: 7,
            },
            429,
            "text/plain",
        ),
    ];
    for (fault, status, content_type) in cases {
        fake.set_fault(fault.clone());
        let answer = exchange(&fake, &code).await;
        assert_eq!(answer.status, status, "{fault:?}");
        assert!(
            answer.headers[CONTENT_TYPE]
                .to_str()
                .expect("ASCII")
                .starts_with(content_type),
            "{fault:?}"
        );
        assert!(
            answer.json.get("access_token").is_none(),
            "{fault:?}: {}",
            answer.text
        );
        if status == 429 {
            assert_eq!(answer.headers["retry-after"], "7");
        }
    }
    fake.set_fault(Fault::Hang);
    let impatient = client_with(reqwest::Client::builder().timeout(Duration::from_millis(300)));
    let error = exchange_with(&impatient, &fake, &code)
        .await
        .expect_err("a hanging fake never answers");
    assert!(error.is_timeout(), "{error}");
    assert_eq!(
        fake.requests().last().map(|r| r.status),
        Some(0),
        "recorded before answering"
    );

    fake.set_fault(Fault::None);
    fake.set_delay(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(
        exchange(&fake, &code).await.status,
        200,
        "faults did not use the code"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(fake.rejections(), Vec::<String>::new());

    let access = fake.last_access_token().expect("an access token");
    fake.set_userinfo_fault(Fault::ServerError);
    assert_eq!(userinfo(&fake, &access).await.status, 503);
    let url = fake.userinfo_url().expect("a user endpoint");
    assert_error(&send(client().get(url)).await, 401, "invalid_token");
}
