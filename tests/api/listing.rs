//! ListConnections that scales (pages on a stable order, filters that
//! combine), labels (from BeginAuth, replaced by UpdateConnectionLabels) and
//! reconnecting a connection in place, through the real server.

use std::collections::{BTreeSet, HashMap};

use authbroker::pb::{self, ConnectionStatus};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::helpers::*;

/// Writes `count` connections of the billing caller straight into the
/// database: three per second of creation time, so pages end inside a
/// second and the id decides; every fifth NEEDS_REAUTH, every third to
/// aries, every other labelled plan=pro.
async fn seed(app: &TestApp, count: usize, first: usize) {
    for chunk in (first..first + count).collect::<Vec<_>>().chunks(250) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|i| {
                let status = if i % 5 == 0 { "NEEDS_REAUTH" } else { "ACTIVE" };
                let provider = if i % 3 == 0 { "aries" } else { "ares" };
                let labels = if i % 2 == 0 {
                    format!(r#"{{"plan":"pro","n":"{i}"}}"#)
                } else {
                    format!(r#"{{"n":"{i}"}}"#)
                };
                format!(
                    "('{}', 'billing', '{provider}', 'user-{}', 'acct-{i}', 'read', '{status}', \
                     '{CALLBACK}', 'Bearer', 'k1', 1, '{labels}', {}, {})",
                    uuid::Uuid::new_v4(),
                    i % 7,
                    1_700_000_000 + (i / 3) as i64,
                    1_700_000_000 + (i / 3) as i64,
                )
            })
            .collect();
        app.db
            .execute(&format!(
                "INSERT INTO connections (id, caller, provider, subject, provider_user_id, scopes, \
                 status, redirect_uri, token_type, key_id, version, labels, created_at, updated_at) \
                 VALUES {}",
                rows.join(", ")
            ))
            .await;
    }
}

fn request(page_size: i32, page_token: &str) -> pb::ListConnectionsRequest {
    pb::ListConnectionsRequest {
        page_size,
        page_token: page_token.into(),
        ..Default::default()
    }
}

async fn page(
    client: &mut Client,
    req: pb::ListConnectionsRequest,
) -> Result<pb::ListConnectionsResponse, Status> {
    client.list_connections(req).await.map(|r| r.into_inner())
}

/// Every page of `req`, as ids in order.
async fn all_pages(
    client: &mut Client,
    mut req: pb::ListConnectionsRequest,
) -> Vec<pb::Connection> {
    let mut seen = Vec::new();
    loop {
        let answer = page(client, req.clone()).await.expect("a page");
        assert!(answer.connections.len() as i32 <= req.page_size.clamp(1, 1000));
        seen.extend(answer.connections);
        if answer.next_page_token.is_empty() {
            return seen;
        }
        req.page_token = answer.next_page_token;
    }
}

fn field(status: &Status) -> String {
    status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default()
}

async fn paging_returns_each_connection_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    seed(&app, 2_500, 0).await;

    // While paging, more are created (newer, so listed before the cursor:
    // never on a later page, never twice).
    let mut req = request(100, "");
    let mut seen: Vec<String> = Vec::new();
    let mut pages = 0;
    loop {
        let answer = page(&mut client, req.clone()).await.expect("a page");
        pages += 1;
        seen.extend(answer.connections.iter().map(|c| c.id.clone()));
        if pages % 5 == 0 {
            seed(&app, 10, 10_000 + pages * 10).await;
        }
        if answer.next_page_token.is_empty() {
            break;
        }
        req.page_token = answer.next_page_token;
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no connection listed twice");
    assert_eq!(seen.len(), 2_500, "each seeded connection exactly once");
    assert_eq!(pages, 25);

    // The default page is 100; more than 1000 is 1000.
    assert_eq!(
        page(&mut client, request(0, ""))
            .await
            .expect("page")
            .connections
            .len(),
        100
    );
    let big = page(&mut client, request(5_000, "")).await.expect("page");
    assert_eq!(big.connections.len(), 1_000);
    assert!(!big.next_page_token.is_empty(), "no silent truncation");
    // Newest first, by creation then id.
    let order: Vec<(i64, String)> = big
        .connections
        .iter()
        .map(|c| {
            (
                c.created_at.as_ref().map(|t| t.seconds).unwrap_or_default(),
                c.id.clone(),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(order, sorted);
}

async fn filters_combine(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    seed(&app, 300, 0).await;
    let expected = |keep: &dyn Fn(usize) -> bool| (0..300).filter(|i| keep(*i)).count();

    let labels: HashMap<String, String> = [("plan".to_owned(), "pro".to_owned())].into();
    let req = pb::ListConnectionsRequest {
        page_size: 7,
        provider: "ares".into(),
        status: ConnectionStatus::Active.into(),
        labels: labels.clone(),
        ..Default::default()
    };
    let found = all_pages(&mut client, req).await;
    assert_eq!(
        found.len(),
        expected(&|i| i % 3 != 0 && i % 5 != 0 && i % 2 == 0)
    );
    assert!(found.iter().all(|c| c.provider == "ares"
        && c.status() == ConnectionStatus::Active
        && c.labels.get("plan").map(String::as_str) == Some("pro")));

    let req = pb::ListConnectionsRequest {
        page_size: 50,
        subject: "user-3".into(),
        status: ConnectionStatus::NeedsReauth.into(),
        ..Default::default()
    };
    let found = all_pages(&mut client, req).await;
    assert_eq!(found.len(), expected(&|i| i % 7 == 3 && i % 5 == 0));
    // A label with a value that no connection has matches none.
    let req = pb::ListConnectionsRequest {
        labels: [("plan".to_owned(), "free".to_owned())].into(),
        ..Default::default()
    };
    assert!(
        page(&mut client, req)
            .await
            .expect("page")
            .connections
            .is_empty()
    );

    // The other caller sees none of them.
    let mut search = app.search().await;
    assert!(
        page(&mut search, request(0, ""))
            .await
            .expect("page")
            .connections
            .is_empty()
    );

    // A token is for the filters it was made with.
    let first = page(&mut client, request(10, "")).await.expect("page");
    let other_filters = pb::ListConnectionsRequest {
        page_size: 10,
        page_token: first.next_page_token.clone(),
        provider: "ares".into(),
        ..Default::default()
    };
    let refused = page(&mut client, other_filters)
        .await
        .expect_err("other filters");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(field(&refused), "page_token");
    for (req, name) in [
        (request(10, "garbage!"), "page_token"),
        (request(-1, ""), "page_size"),
        (
            pb::ListConnectionsRequest {
                status: 99,
                ..Default::default()
            },
            "status",
        ),
        (
            pb::ListConnectionsRequest {
                labels: [("bad key".to_owned(), "v".to_owned())].into(),
                ..Default::default()
            },
            "labels",
        ),
    ] {
        let refused = page(&mut client, req).await.expect_err(name);
        assert_eq!(refused.code(), Code::InvalidArgument, "{name}");
        assert_eq!(field(&refused), name);
    }
}

async fn labels_from_begin_auth_and_replaced(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let labels: HashMap<String, String> = [
        ("workspace".to_owned(), "w-17".to_owned()),
        ("example.com/plan".to_owned(), "pro".to_owned()),
    ]
    .into();
    let request = pb::BeginAuthRequest {
        provider: "ares".into(),
        subject: "u".into(),
        redirect_uri: CALLBACK.into(),
        labels: labels.clone(),
        ..Default::default()
    };
    let conn = connect_via(&mut client, &app.fakes.ares, request, USER).await;
    assert_eq!(conn.labels, labels);
    assert_eq!(fetch(&mut client, &conn.id).await.labels, labels);

    let update = |labels: HashMap<String, String>, id: &str| pb::UpdateConnectionLabelsRequest {
        connection_id: id.into(),
        labels,
    };
    let replaced: HashMap<String, String> = [("tier".to_owned(), "gold".to_owned())].into();
    let updated = client
        .update_connection_labels(update(replaced.clone(), &conn.id))
        .await
        .expect("updated")
        .into_inner()
        .connection
        .expect("connection");
    assert_eq!(updated.labels, replaced, "replaced, not merged");
    assert_eq!(fetch(&mut client, &conn.id).await.labels, replaced);

    let too_many: HashMap<String, String> =
        (0..17).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    for (bad, needle) in [
        (too_many, "at most 16"),
        ([("-bad".to_owned(), "v".to_owned())].into(), "-bad"),
        ([("k".to_owned(), "v".repeat(257))].into(), "256"),
    ] {
        let refused = client
            .update_connection_labels(update(bad, &conn.id))
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(field(&refused), "labels");
        assert!(refused.message().contains(needle), "{}", refused.message());
    }
    // Another caller's connection is not found, and keeps its labels.
    let mut search = app.search().await;
    let refused = search
        .update_connection_labels(update(HashMap::new(), &conn.id))
        .await
        .expect_err("not theirs");
    assert_eq!(refused.code(), Code::NotFound);
    assert_eq!(fetch(&mut client, &conn.id).await.labels, replaced);
}

async fn reconnecting_in_place_keeps_the_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fake = app.fakes.ares.clone();
    fake.add_user("user-43", "user-43@example.test", PASSWORD, CREDITS);
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;
    fake.revoke_refresh_tokens();
    app.expire(&conn.id).await;
    token(&mut client, &conn.id, 0)
        .await
        .expect_err("needs reauth");
    assert_eq!(
        fetch(&mut client, &conn.id).await.status(),
        ConnectionStatus::NeedsReauth
    );

    let again = |id: &str, scopes: &[&str]| pb::BeginAuthRequest {
        provider: "ares".into(),
        subject: "u".into(),
        redirect_uri: CALLBACK.into(),
        connection_id: id.into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    };
    let repaired = connect_via(
        &mut client,
        &fake,
        again(&conn.id, &["read", "write", "admin"]),
        USER,
    )
    .await;
    assert_eq!(repaired.id, conn.id, "the same connection");
    assert_eq!(repaired.status(), ConnectionStatus::Active);
    assert!(
        repaired.scopes.contains(&"admin".to_owned()),
        "{:?}",
        repaired.scopes
    );
    let served = token(&mut client, &conn.id, 0).await.expect("serves again");
    let listed = page(&mut client, request(0, "")).await.expect("page");
    assert_eq!(listed.connections.len(), 1, "no second connection");

    // Another account at the provider: refused, nothing changed.
    let begun = client
        .begin_auth(again(&conn.id, &[]))
        .await
        .expect("begun")
        .into_inner();
    let params = fake.approve(&begun.authorization_url, "user-43").await;
    let refused = client
        .complete_auth(callback(params))
        .await
        .expect_err("another account");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let info = refused.get_details_error_info().expect("info");
    assert_eq!(info.reason, "ACCOUNT_MISMATCH");
    let after = token(&mut client, &conn.id, 0).await.expect("still serves");
    assert_eq!(after.access_token, served.access_token, "tokens untouched");
    assert_eq!(fetch(&mut client, &conn.id).await.provider_user_id, USER);

    // What cannot be reconnected is refused at BeginAuth.
    let other = connect(&app, &mut client, "aries", "u").await;
    let refused = client
        .begin_auth(again(&other.id, &[]))
        .await
        .expect_err("another provider's connection");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(field(&refused), "connection_id");
    // Aries names no account: a reconnect could not tell another one apart.
    let refused = client
        .begin_auth(pb::BeginAuthRequest {
            provider: "aries".into(),
            ..again(&other.id, &[])
        })
        .await
        .expect_err("no account to compare");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("names no account"),
        "{}",
        refused.message()
    );
    revoke(&mut client, &conn.id).await;
    let refused = client
        .begin_auth(again(&conn.id, &[]))
        .await
        .expect_err("revoked");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let mut search = app.search().await;
    let refused = search
        .begin_auth(again(&other.id, &[]))
        .await
        .expect_err("not theirs");
    assert_eq!(refused.code(), Code::NotFound);
}

on_both!(
    paging_returns_each_connection_once,
    filters_combine,
    labels_from_begin_auth_and_replaced,
    reconnecting_in_place_keeps_the_id,
);
