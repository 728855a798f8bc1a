//! The authorize page: link validation and the end user's decisions.

use super::support::*;
use crate::fake::Kind;

#[tokio::test]
async fn bad_authorize_links_are_refused() {
    let get = |url: String| {
        let client =
            client_with(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()));
        async move { send(client.get(url).header("x-fake-user", USER)).await }
    };
    for kind in [Kind::Ares, Kind::Aries, Kind::Askara] {
        let fake = start(kind).await;
        for change in [
            ("client_id", Some("someone-else")),
            ("redirect_uri", Some("http://127.0.0.1:9/callback/")),
            ("redirect_uri", None),
        ] {
            assert_eq!(
                get(link_with(&fake, &[change])).await.status,
                400,
                "{kind:?} {change:?}"
            );
        }
        // RFC 6749 §4.1.2.1: with a trusted redirect URI, the error goes back to the client.
        let mut broken = vec![(
            ("response_type", Some("token")),
            "unsupported_response_type",
        )];
        if kind != Kind::Aries {
            broken.push((("scope", None), "invalid_scope"));
        }
        let expected_rejections = 3 + broken.len();
        for (change, error) in broken {
            let answer = get(link_with(&fake, &[change])).await;
            let location = answer.headers["location"].to_str().expect("ASCII");
            assert_eq!(answer.status, 302);
            assert!(
                location.starts_with(&format!("{CALLBACK}?error={error}")),
                "{location}"
            );
            assert!(location.ends_with("state=st-1"), "{location}");
        }
        assert_eq!(fake.rejections().len(), expected_rejections, "{kind:?}");
    }

    // Doc 004 line 62: ARterra sends every broken link to its main page.
    let fake = start(Kind::Arterra).await;
    for change in [
        ("client_id", Some("someone-else")),
        ("response_type", Some("token")),
        ("redirect_uri", None),
    ] {
        let answer = get(link_with(&fake, &[change])).await;
        assert_eq!(answer.status, 302, "{change:?}");
        assert_eq!(
            answer.headers["location"],
            format!("{}/", fake.base_url()),
            "{change:?}"
        );
    }
    assert_eq!(fake.rejections().len(), 3);
    let signup_page = link_with(&fake, &[("response_type", Some("signup"))]);
    assert!(fake.approve(&signup_page, USER).await.contains_key("code"));
}

#[tokio::test]
#[should_panic(expected = "not back to the client")]
async fn approve_fails_when_arterra_sends_the_user_home() {
    let fake = start(Kind::Arterra).await;
    fake.approve(
        &link_with(&fake, &[("client_id", Some("someone-else"))]),
        USER,
    )
    .await;
}

#[tokio::test]
#[should_panic(expected = "refused")]
async fn approve_fails_on_an_unregistered_redirect_uri() {
    let fake = start(Kind::Ares).await;
    fake.approve(
        &link_with(&fake, &[("redirect_uri", Some("http://evil.test/cb"))]),
        USER,
    )
    .await;
}

#[tokio::test]
async fn denial_comes_back_as_access_denied_with_the_state() {
    for kind in Kind::ALL {
        let fake = start(kind).await;
        let callback = fake.deny(&link(&fake)).await;
        assert_eq!(callback["state"], "st-1");
        assert!(callback.contains_key("error_description") && !callback.contains_key("code"));
    }
}

#[tokio::test]
async fn arterra_sign_up_needs_email_verification_before_sign_in() {
    let fake = start(Kind::Arterra).await;
    let page = link_with(&fake, &[("response_type", Some("signup"))]);
    let callback = fake.sign_up_unverified(&page, "newbie").await;
    assert_eq!(
        (callback["userId"].as_str(), callback["state"].as_str()),
        ("newbie", "st-1")
    );
    assert!(!callback.contains_key("code"));

    let client =
        client_with(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()));
    let attempt = send(client.get(link(&fake)).header("x-fake-user", "newbie")).await;
    assert_eq!(attempt.status, 403, "{}", attempt.text);
    fake.verify_email("newbie");
    assert!(
        fake.approve(&link(&fake), "newbie")
            .await
            .contains_key("code")
    );
}
