//! Builds and runs the server: database, key, broker, the gRPC services
//! (AuthBroker, health, reflection) and graceful shutdown.

mod key;

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use migration::MigratorTrait;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tonic::{service::interceptor::InterceptedService, transport::Server};
use tonic_health::ServingStatus;

use crate::{
    api::{Api, callers::CallerAuth},
    audit::Audit,
    broker::{Broker, BrokerSettings},
    clock::{SharedClock, SystemClock},
    config::{KeySetting, Settings},
    http::HttpClient,
    listener::{self, BusyLayer, ConnLimits, ShedLayer, Tls},
    pb::auth_broker_server::AuthBrokerServer,
    store,
    telemetry::rpc::RpcLayer,
};

/// Health service name for liveness probes; it does not follow the database.
pub const LIVENESS: &str = "liveness";
/// Health service name for readiness probes: the API's own name.
pub const READINESS: &str = "authbroker.v1.AuthBroker";
/// Connections the health listener holds at most: probes and little else.
const HEALTH_CONNECTIONS: usize = 256;
/// How often expired states and old ledger rows are deleted.
const JANITOR_INTERVAL: Duration = Duration::from_secs(60);
/// How often the background refresher publishes its due-queue depth.
const DUE_DEPTH_EVERY: Duration = Duration::from_secs(10);
/// The pause between background passes while more is due than one pass
/// takes: slots free up as refreshes finish.
const BACKLOG_PAUSE: Duration = Duration::from_millis(50);

/// Installs ring as rustls' process-wide crypto provider (reqwest and sqlx
/// share it). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `authbroker reseal`: re-seals every secret still under an older key with
/// the ring's active key, printing progress after each batch.
pub async fn reseal(settings: &Settings) -> anyhow::Result<()> {
    let ring = key::load(&settings.key)?;
    let db = connect(settings).await?;
    let active = ring.active().id().to_owned();
    let done = crate::broker::reseal(&db, &ring, |p: crate::broker::ResealProgress| {
        println!(
            "reseal: {} of {} connection(s) re-sealed under {active:?}, {} changed meanwhile (sealed anew by their writer)",
            p.resealed, p.total, p.skipped
        );
    })
    .await?;
    println!(
        "reseal: done; {} pending state(s) re-sealed. Run it once more after the replicas use the new ring to be sure, then remove the old key",
        done.states
    );
    Ok(())
}

/// `authbroker audit`: prints the matching audit events as JSON lines.
pub async fn print_audit(
    settings: &Settings,
    connection_id: Option<String>,
    caller: Option<String>,
    since: Option<String>,
    limit: u64,
) -> anyhow::Result<()> {
    use crate::clock::Clock as _;
    let now_ms = SystemClock.now_millis();
    let since_ms = since.map(|text| parse_since(&text, now_ms)).transpose()?;
    let db = connect(settings).await?;
    let query = store::audit::AuditQuery {
        connection_id,
        caller,
        since_ms,
        limit,
    };
    for event in store::audit::find(&db, &query).await? {
        println!(
            "{}",
            serde_json::json!({
                "id": event.id,
                "at_ms": event.at,
                "caller": event.caller,
                "connection_id": event.connection_id,
                "action": event.action,
                "outcome": event.outcome,
                "detail": event.detail,
                "trace_id": event.trace_id,
            })
        );
    }
    Ok(())
}

/// `--since`: Unix seconds, or an age (`90m`, `24h`, `7d`) before `now_ms`.
fn parse_since(text: &str, now_ms: i64) -> anyhow::Result<i64> {
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs * 1000);
    }
    let (n, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = n
        .parse()
        .map_err(|_| anyhow::anyhow!("--since: {text:?} is not Unix seconds or an age like 24h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => anyhow::bail!("--since: {text:?} is not Unix seconds or an age like 24h"),
    };
    Ok(now_ms - secs * 1000)
}

/// Connects to the database and applies pending migrations.
pub async fn migrate(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let db = connect(settings).await?;
    migration::Migrator::up(&db, None)
        .await
        .context("applying migrations")?;
    Ok(db)
}

async fn connect(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    install_crypto_provider();
    store::connect(&settings.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database ({})",
                crate::config::redact_database_url(&settings.database_url)
            )
        })
}

/// Serves until `shutdown` completes, then drains in-flight calls.
pub async fn serve(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with_clock(settings, Arc::new(SystemClock), None, shutdown).await
}

/// [`serve`] with the clock every time-based decision reads, telling `bound`
/// the address once listening: tests run the server in process and move a
/// [`crate::clock::TestClock`] instead of sleeping.
pub async fn serve_with_clock(
    settings: Settings,
    clock: SharedClock,
    bound: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if settings.callers.is_empty() && !settings.listen.ip().is_loopback() {
        anyhow::bail!(
            "callers: none configured, so calls would be unauthenticated; this is only allowed on a loopback listen address, not {}",
            settings.listen
        );
    }
    // A configured key is checked before the database is touched: the
    // cheaper mistake is reported first.
    let configured_key = match &settings.key {
        KeySetting::Configured { .. } | KeySetting::Ring { .. } => Some(key::load(&settings.key)?),
        KeySetting::File { .. } => None,
    };
    let db = if settings.migrate_on_start {
        migrate(&settings).await?
    } else {
        connect(&settings).await?
    };
    let key = match configured_key {
        Some(key) => key,
        None => {
            if let KeySetting::File { path, .. } = &settings.key
                && !path.exists()
                && store::connections::any_sealed(&db).await?
            {
                anyhow::bail!(
                    "key file {} is missing but the database holds tokens sealed under it; restore the key file \
                     (a new key could not open them)",
                    path.display()
                );
            }
            key::load(&settings.key)?
        }
    };
    crate::broker::check_stored_keys(&db, &key).await?;
    let http = HttpClient::new(&settings.http).context("building the HTTP client")?;
    // The longest a provider attempt with retries can take: three attempts
    // timing out (reqwest's total timeout includes connecting), two
    // Retry-After waits of at most 2 s, the writes, whole-second rounding and
    // some clock drift.
    let attempt_budget = settings.http.timeout * 3 + Duration::from_secs(10);
    if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        // The embedded database has one process: any lease or usage claim
        // found now was held by a process that died. What it sent stays
        // recorded, so the next refresh or same-key report knows.
        let lapsed = store::connections::lapse_all_leases(&db).await?
            + store::usage::lapse_all_claims(&db).await?;
        if lapsed > 0 {
            tracing::warn!(
                lapsed,
                "refresh leases and usage claims of a stopped process lapsed at start"
            );
        }
    }
    // `host/pid/incarnation`: the pod name and process id stay the same when
    // a container restarts in its pod (the binary runs as PID 1), so a lease
    // held under them by another incarnation was left by a process that is
    // gone; two live processes never share host and pid.
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "authbroker".into());
    let owner = format!(
        "{}/{}/{}",
        host.chars().take(63).collect::<String>(),
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let broker = Broker::new(
        db.clone(),
        key,
        http,
        settings.providers.into_values(),
        clock.clone(),
        BrokerSettings {
            state_ttl: settings.state_ttl,
            tokens: settings.tokens.clone(),
            attempt_budget,
            owner,
        },
    );

    // Before any lease is taken, so each lease this process holds is backed
    // by its lock.
    broker.hold_process_lock().await;
    // Before serving, so a provider whose issuer answers is usable from the
    // first call.
    broker.discover_providers().await;

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<AuthBrokerServer<Api>>().await;
    // "liveness" answers SERVING while the process can answer at all: a
    // database outage must take replicas out of rotation, not restart them.
    health_reporter
        .set_service_status(LIVENESS, ServingStatus::Serving)
        .await;
    let stopping = Arc::new(AtomicBool::new(false));
    tokio::spawn(watch_database(
        db.clone(),
        health_reporter.clone(),
        settings.health_check_interval,
        stopping.clone(),
    ));
    tokio::spawn(janitor(
        db.clone(),
        clock.clone(),
        settings.usage_retention,
        settings.audit_retention,
    ));
    let audit = Audit::start(db.clone(), clock.clone());
    tokio::spawn(count_connections(db.clone()));
    tokio::spawn({
        let broker = broker.clone();
        async move { broker.count_replicas().await }
    });
    if let Some(interval) = settings.tokens.refresh_interval {
        tokio::spawn(refresher(broker.clone(), interval, stopping.clone()));
    }

    // v1 and v1alpha: older grpcurl and grpc_cli only speak v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1().context("building reflection")?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .context("building reflection")?;

    let tls = match &settings.tls {
        Some(tls) => {
            let tls = Tls::load(tls).context("loading the TLS certificate files")?;
            tokio::spawn(tls.clone().keep_fresh());
            Some(tls)
        }
        None => None,
    };
    let limits = settings.server.clone();
    let conn_limits = ConnLimits {
        max_connections: listener::effective_max(limits.max_connections),
        handshake_timeout: limits.handshake_timeout,
        idle_timeout: limits.idle_timeout,
    };
    // Prometheus scrapes in plaintext on a port of its own; nothing secret
    // is in a metric.
    if let Some(metrics_addr) = settings.metrics_listen {
        let metrics_listener = TcpListener::bind(metrics_addr)
            .await
            .with_context(|| format!("cannot listen on {metrics_addr} (metrics_listen)"))?;
        tracing::info!(addr = %metrics_listener.local_addr()?, "metrics listening");
        let reader = crate::telemetry::scrape_reader().unwrap_or_default();
        tokio::spawn(crate::telemetry::prometheus::serve(
            metrics_listener,
            reader,
        ));
    }
    // Probes cannot speak TLS: health alone, in plaintext, on its own port.
    let health_server = match settings.health_listen {
        Some(health_addr) => {
            let health_listener = TcpListener::bind(health_addr)
                .await
                .with_context(|| format!("cannot listen on {health_addr} (health_listen)"))?;
            tracing::info!(addr = %health_listener.local_addr()?, "health listening");
            let probes = Server::builder()
                .add_service(health_service.clone())
                .serve_with_incoming(listener::incoming(
                    health_listener,
                    ConnLimits {
                        max_connections: conn_limits.max_connections.min(HEALTH_CONNECTIONS),
                        ..conn_limits
                    },
                    None,
                    "health",
                ));
            Some(tokio::spawn(probes))
        }
        None => None,
    };

    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr: SocketAddr = listener.local_addr()?;
    if settings.callers.is_empty() {
        tracing::warn!("no callers configured: accepting unauthenticated calls on loopback only");
    }
    tracing::info!(%addr, tls = tls.is_some(), "authbroker listening");
    if let Some(bound) = bound {
        let _ = bound.send(addr);
    }

    let api = InterceptedService::new(
        AuthBrokerServer::new(Api::new(
            broker.clone(),
            limits.request_timeout,
            audit.clone(),
        ))
        // This API's requests are small: a larger one is refused before
        // it is read into memory.
        .max_decoding_message_size(limits.max_message_bytes),
        CallerAuth::new(&settings.callers).with_audit(audit.clone()),
    );
    // On the signal: report NOT_SERVING first, so probes and balancers stop
    // sending, then stop accepting and let in-flight calls finish — for at
    // most the grace period.
    let (drain_started, mut drain_begun) = tokio::sync::watch::channel(false);
    let drain = async move {
        shutdown.await;
        stopping.store(true, Ordering::SeqCst);
        set_health(&health_reporter, ServingStatus::NotServing).await;
        let _ = drain_started.send(true);
    };
    let server = Server::builder()
        .timeout(limits.request_timeout)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .max_connection_age(limits.max_connection_age)
        .max_connection_age_grace(limits.max_connection_age_grace)
        .http2_max_header_list_size(16 * 1024)
        // The first layer is the outermost: a shed call is still traced and
        // counted, and marks its connection busy only once admitted.
        .layer(RpcLayer)
        .layer(ShedLayer::new(limits.max_in_flight))
        .layer(BusyLayer)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(api)
        .serve_with_incoming_shutdown(
            listener::incoming(listener, conn_limits, tls, "grpc"),
            drain,
        );
    let grace = settings.shutdown_grace;
    tokio::select! {
        served = server => served.context("serving gRPC")?,
        _ = async {
            let _ = drain_begun.wait_for(|begun| *begun).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!(grace_secs = grace.as_secs(), "grace period over: exiting with calls still in flight"),
    }
    if let Some(probes) = health_server {
        probes.abort();
    }
    audit.flush().await;
    broker.leave().await;
    // Closing checkpoints SQLite's write-ahead log into the file.
    if let Err(e) = db.close().await {
        tracing::warn!(error = %e, "closing the database failed");
    }
    tracing::info!("authbroker stopped");
    Ok(())
}

/// Flips the health status with the database's reachability.
async fn watch_database(
    db: DatabaseConnection,
    reporter: tonic_health::server::HealthReporter,
    interval: Duration,
    stopping: Arc<AtomicBool>,
) {
    let mut serving = true;
    loop {
        tokio::time::sleep(interval).await;
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let ok = tokio::time::timeout(interval.max(Duration::from_secs(1)), db.ping())
            .await
            .is_ok_and(|r| r.is_ok());
        if ok != serving {
            serving = ok;
            let status = if ok {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            if ok {
                tracing::info!("database reachable again: SERVING");
            } else {
                tracing::error!("database unreachable: NOT_SERVING");
            }
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            set_health(&reporter, status).await;
        }
    }
}

/// Sets the overall and the API service's health status.
async fn set_health(reporter: &tonic_health::server::HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter.set_service_status(READINESS, status).await;
}

/// Keeps the connections-by-status gauge current.
async fn count_connections(db: DatabaseConnection) {
    loop {
        match store::connections::count_by_status(&db).await {
            Ok(counts) => {
                for (status, count) in counts {
                    crate::telemetry::metrics::set_connection_count(status.as_str(), count);
                }
            }
            Err(e) => tracing::debug!(error = %e, "counting connections failed"),
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
}

/// Deletes expired authorization states and old settled ledger rows on a schedule.
async fn janitor(
    db: DatabaseConnection,
    clock: SharedClock,
    usage_retention: Duration,
    audit_retention: Duration,
) {
    loop {
        let now = clock.now();
        match store::states::delete_expired(&db, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired authorization states removed"),
            Err(e) => tracing::warn!(error = %e, "cleaning expired states failed"),
        }
        let before = now - usage_retention.as_secs() as i64;
        match store::usage::delete_settled_before(&db, before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "old usage ledger rows removed"),
            Err(e) => tracing::warn!(error = %e, "cleaning the usage ledger failed"),
        }
        let before_ms = clock.now_millis() - audit_retention.as_millis() as i64;
        match store::audit::purge(&db, before_ms).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "audit events past their retention removed"),
            Err(e) => tracing::warn!(error = %e, "cleaning the audit trail failed"),
        }
        tokio::time::sleep(JANITOR_INTERVAL).await;
    }
}

/// Renews connections nearing expiry so that callers rarely wait on a
/// refresh: a pass every `interval`, or as soon as a refresh ends while more
/// is due than one pass could take.
async fn refresher(broker: Broker, interval: Duration, stopping: Arc<AtomicBool>) {
    let mut depth_sampled: Option<std::time::Instant> = None;
    loop {
        // No new refreshes once draining: one cut off at exit could lose a
        // rotated refresh token.
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let backlog = match broker.background_pass(interval).await {
            Ok((_, more)) => more,
            Err(e) => {
                tracing::warn!(error = %e, "background refresh pass failed");
                false
            }
        };
        if depth_sampled.is_none_or(|at| at.elapsed() >= DUE_DEPTH_EVERY) {
            broker.sample_due_depth().await;
            depth_sampled = Some(std::time::Instant::now());
        }
        // With a backlog the next pass starts as soon as a refresh frees its
        // slot; without one, waking on every finished refresh would only add
        // a claim query per refresh.
        if backlog {
            broker.background_idle(BACKLOG_PAUSE.min(interval)).await;
        } else {
            tokio::time::sleep(interval).await;
        }
    }
}
