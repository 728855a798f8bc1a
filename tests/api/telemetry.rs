//! Traces and metrics reach an OTLP collector; callers' traces continue
//! through authbroker; no secret appears in any attribute; logs carry trace ids.

use std::time::{Duration, Instant};

use authbroker::pb;
use tonic::{Request, metadata::MetadataValue};

use crate::{
    collector::{Collector, attribute},
    helpers::*,
};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

async fn spans_and_metrics_reach_the_collector(backend: Backend) {
    let (collector, addr) = Collector::start().await;
    let options = Options {
        env: vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                format!("http://{addr}"),
            ),
            ("OTEL_METRIC_EXPORT_INTERVAL".into(), "300".into()),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
            ("OTEL_SERVICE_NAME".into(), "authbroker-test".into()),
        ],
        background_refresh_secs: 1,
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    let mut client = app.billing().await;
    // A 4 s token, renewed in the background past half its life.
    app.fakes.askara.set_token_lifetime(Some(4));
    connect(&app, &mut client, "askara", "u").await;
    let conn = connect(&app, &mut client, "ares", "u").await;
    let started = Instant::now();
    while app.fakes.askara.refreshes_accepted() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no background refresh"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A caller in the middle of its own trace.
    let mut request = Request::new(pb::GetAccessTokenRequest {
        connection_id: conn.id.clone(),
        force_refresh: true,
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        MetadataValue::try_from(format!("00-{TRACE_ID}-00f067aa0ba902b7-01")).expect("ascii"),
    );
    client.get_access_token(request).await.expect("refresh");
    client
        .record_usage(pb::RecordUsageRequest {
            connection_id: conn.id.clone(),
            usage: "button".into(),
            credits: 1.0,
            idempotency_key: "k".into(),
        })
        .await
        .expect("usage");
    token(&mut client, &conn.id, 60)
        .await
        .expect("cached token");
    client
        .revoke_connection(pb::RevokeConnectionRequest {
            connection_id: conn.id.clone(),
        })
        .await
        .expect("revoke");

    // A caller's mistake and a provider outage: `error.type` on both, span
    // status Error only on the server's side of the line.
    let _ = client
        .get_connection(pb::GetConnectionRequest {
            connection_id: "019abf40-0000-7000-8000-000000000000".into(),
        })
        .await
        .expect_err("not found");
    let begun = begin(&mut client, "aries", "u2").await;
    let params = app
        .fakes
        .aries
        .approve(&begun.authorization_url, USER)
        .await;
    app.fakes.aries.set_fault(crate::fake::Fault::ServerError);
    let _ = client
        .complete_auth(callback(params))
        .await
        .expect_err("provider down");
    app.fakes.aries.set_fault(crate::fake::Fault::None);

    let wanted_metrics = [
        "authbroker.connection.status_changes",
        "authbroker.connections",
        "authbroker.provider.duration",
        "authbroker.refresh.background",
        "authbroker.refresh.due",
        "authbroker.refresh.lateness",
        "authbroker.refreshes",
        "authbroker.rpc.duration",
        "authbroker.token_cache.lookups",
    ];
    let started = Instant::now();
    loop {
        let spans = collector.spans();
        let names = collector.metric_names();
        let have_spans = [
            "authbroker.v1.AuthBroker/CompleteAuth",
            "authbroker.v1.AuthBroker/RevokeConnection",
            "token ares",
            "usage ares",
            "userinfo ares",
        ]
        .iter()
        .all(|n| spans.iter().any(|s| s.name == *n))
            && spans.iter().any(|s| {
                s.name == "authbroker.v1.AuthBroker/CompleteAuth"
                    && attribute(s, "error.type").is_some()
            });
        let have_metrics = wanted_metrics.iter().all(|m| names.iter().any(|n| n == m));
        if have_spans && have_metrics {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "missing telemetry; spans: {:?}; metrics: {names:?}",
            spans.iter().map(|s| s.name.clone()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let spans = collector.spans();
    // The caller's trace continues through authbroker, down to the provider call.
    let rpc = spans
        .iter()
        .find(|s| {
            s.name == "authbroker.v1.AuthBroker/GetAccessToken" && hex(&s.trace_id) == TRACE_ID
        })
        .unwrap_or_else(|| {
            panic!(
                "GetAccessToken span in the caller trace: {:?}",
                spans
                    .iter()
                    .map(|s| (s.name.clone(), hex(&s.trace_id), hex(&s.parent_span_id)))
                    .collect::<Vec<_>>()
            )
        });
    assert_eq!(hex(&rpc.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(attribute(rpc, "rpc.grpc.status_code").as_deref(), Some("0"));
    assert_eq!(attribute(rpc, "error.type"), None);
    let failed = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name && attribute(s, "error.type").is_some())
            .unwrap_or_else(|| panic!("a failed {name} span"))
    };
    let not_found = failed("authbroker.v1.AuthBroker/GetConnection");
    assert_eq!(
        attribute(not_found, "error.type").as_deref(),
        Some("NOT_FOUND")
    );
    assert_ne!(
        not_found.status.as_ref().map(|s| s.code),
        Some(2),
        "a caller's mistake is no server error"
    );
    let outage = failed("authbroker.v1.AuthBroker/CompleteAuth");
    assert_eq!(
        attribute(outage, "error.type").as_deref(),
        Some("UNAVAILABLE")
    );
    assert_eq!(
        outage.status.as_ref().map(|s| s.code),
        Some(2),
        "span status Error"
    );
    let refresh = spans
        .iter()
        .find(|s| s.name == "token ares" && hex(&s.trace_id) == TRACE_ID)
        .expect("provider span inside the caller's trace");
    assert_eq!(attribute(refresh, "provider").as_deref(), Some("ares"));
    assert_eq!(attribute(refresh, "endpoint").as_deref(), Some("token"));
    assert_eq!(
        attribute(refresh, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(attribute(refresh, "outcome").as_deref(), Some("success"));

    // Nothing secret in any attribute of any span or metric.
    let values = collector.all_attribute_values();
    assert!(values.iter().any(|v| v == "service.name=authbroker-test"));
    assert!(
        values.iter().any(|v| v == "to=REVOKED"),
        "the status change is counted by its new status"
    );
    assert!(
        values.iter().any(|v| v == "result=hit"),
        "cache hits are counted"
    );
    let mut secrets = app.fakes.all_secrets();
    secrets.extend(app.fakes.ares.last_refresh_token());
    for secret in &secrets {
        assert!(
            !values.iter().any(|v| v.contains(secret.as_str())),
            "an attribute holds a secret"
        );
    }

    // Logs of that call carry its trace id.
    let logs = app.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("token refreshed") && l.contains(TRACE_ID)),
        "the refresh log line names the caller's trace"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn nothing_breaks_without_a_collector(backend: Backend) {
    // The endpoint is set but nobody listens there.
    let options = Options {
        env: vec![(
            "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
            "http://127.0.0.1:9".into(),
        )],
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "askara", "u").await;
    token(&mut client, &conn.id, 60).await.expect("served");
}

on_both!(
    spans_and_metrics_reach_the_collector,
    nothing_breaks_without_a_collector
);
