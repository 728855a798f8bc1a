//! The load benchmark: authbroker's RPCs measured side by side with the limit,
//! an empty unary RPC on the same server, in one run on one machine.
//!
//! `cargo bench --bench load` runs everything and prints the table;
//! `-- --write` also updates BENCHMARKS.md and benchmarks/latest.svg;
//! `-- --smoke` is a short run that only checks everything still works.

#![allow(dead_code)] // the fake providers are shared with the tests and used in part here

/// The strict fake providers of the test suite.
#[path = "../../tests/api"]
mod shared {
    pub mod fake;
}
mod background;
mod crash;
mod report;
mod scenarios;
mod server;
mod stats;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use sea_orm::ConnectionTrait;

use report::{EMPTY, Results, Row};
use scenarios::{Clients, USER};
use server::{Backend, BenchDb, CALLBACK, Server, machine};
use shared::fake::{FakeProvider, Kind};

/// How long and how hard each scenario runs.
#[derive(Clone)]
pub struct Settings {
    pub warmup: Duration,
    pub duration: Duration,
    pub concurrencies: Vec<usize>,
    /// HTTP/2 connections shared by the workers.
    pub connections: usize,
    pub stored: usize,
    pub hot: usize,
    pub storm_rounds: usize,
    pub smoke: bool,
    pub only: Option<Vec<String>>,
}

impl Settings {
    fn wants(&self, group: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|groups| groups.iter().any(|g| g == group))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    // `--only GROUP[,GROUP]` runs a subset (flows, miss, storm, rss, startup,
    // crash, background;
    // the limit and cached runs go with flows) — for profiling one path.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|g| g.split(',').map(str::to_owned).collect::<Vec<_>>());
    let write = args.iter().any(|a| a == "--write");
    let settings = if smoke {
        Settings {
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(200),
            concurrencies: vec![1, 16, 64, 256],
            connections: 4,
            stored: 5_000,
            hot: 500,
            storm_rounds: 1,
            smoke,
            only: only.clone(),
        }
    } else {
        Settings {
            warmup: Duration::from_millis(500),
            duration: Duration::from_secs(3),
            concurrencies: vec![1, 16, 64, 256],
            connections: 4,
            stored: 100_000,
            hot: 10_000,
            storm_rounds: 5,
            smoke,
            only,
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let results = runtime.block_on(run(&settings));

    println!("\n{}", results.table());
    let targets = results.targets();
    println!("Targets:");
    for (what, met) in &targets {
        println!("  [{}] {what}", if *met { "met" } else { "MISSED" });
    }
    if write {
        write_results(&results, &targets);
    }
    let errors: u64 = results.rows.iter().map(|r| r.stats.errors).sum();
    let storms_ok = results
        .storm
        .iter()
        .all(|(_, _, _, _, r)| r.iter().all(|n| *n == 1));
    let represented: usize = results.fresh.iter().map(|r| r.represented).sum();
    // Performance targets are reported, not enforced; broken scenarios fail
    // the run (errors, a storm with more than one refresh, a refresh token
    // presented twice).
    if errors > 0 || !storms_ok || represented > 0 {
        eprintln!(
            "benchmark failed: {errors} errors, storms exactly-once: {storms_ok}, refresh tokens re-presented: {represented}"
        );
        std::process::exit(1);
    }
    println!("benchmark: {} scenario rows, 0 errors", results.rows.len());
}

async fn run(s: &Settings) -> Results {
    let mut results = Results::default();
    let fake = FakeProvider::start(Kind::Ares, &[CALLBACK]).await;
    fake.add_user(USER, "bench@example.test", "pw", 1_000_000_000_000);
    // Tokens live a day: the cached and stored paths never refresh mid-run.
    fake.set_token_lifetime(Some(86_400));

    for backend in [Backend::Sqlite, Backend::Postgres] {
        let mut db = BenchDb::create(backend).await;
        let name = backend.name();
        let server = Server::start(&db, Some(&fake), "").await;
        let clients = Arc::new(Clients::new(&server.addr, s.connections).await);
        let ids = Arc::new(scenarios::connect_many(&clients.api(0), &fake, 100).await);
        for &c in s.concurrencies.iter().filter(|_| s.wants("flows")) {
            if backend == Backend::Sqlite {
                let (empty, cached) = interleaved(&clients, &ids, s, c).await;
                push(&mut results, EMPTY, c, empty);
                push(&mut results, "(2) GetAccessToken, cached", c, cached);
            }
            push(
                &mut results,
                &format!("(5) BeginAuth, {name}"),
                c,
                scenarios::begin_auth(&clients, s, c).await,
            );
            push(
                &mut results,
                &format!("(5) CompleteAuth, {name}"),
                c,
                scenarios::complete_auth(&clients, &fake, s, c).await,
            );
            push(
                &mut results,
                &format!("(5) RecordUsage, {name}"),
                c,
                scenarios::record_usage(&clients, &ids, s, c, 0).await,
            );
        }
        server.stop().await;

        let uncached = Server::start(&db, Some(&fake), "token_cache_ttl_ms = 0").await;
        eprintln!("uncached server pid {}", uncached.pid());
        let clients = Arc::new(Clients::new(&uncached.addr, s.connections).await);
        let direct = (backend == Backend::Postgres).then_some(());
        for &c in s.concurrencies.iter().filter(|_| s.wants("miss")) {
            push(
                &mut results,
                &format!("(3) GetAccessToken cache miss, {name}"),
                c,
                scenarios::get_token(&clients, &ids, s, c).await,
            );
            if direct.is_some() {
                let pool = db.connect(c.min(64) as u32).await;
                scenarios::open_all(&pool, c.min(64)).await;
                push(
                    &mut results,
                    "(4) direct PostgreSQL read by key",
                    c,
                    scenarios::direct_read(&pool, &ids, s, c).await,
                );
                let _ = pool.close().await;
            }
        }
        uncached.stop().await;
        db.drop_database().await;
    }

    for callers in [64, 256].into_iter().filter(|_| s.wants("storm")) {
        results.storm.push(storm(&fake, s, callers).await);
    }
    if s.wants("rss") {
        results.rss = Some(peak_rss(&fake, s).await);
    }
    if s.wants("startup") {
        results.startup = Some(startup(&fake, s).await);
    }
    if s.wants("crash") {
        // PostgreSQL waits out a lease (up to 10 s) per round: not in smoke.
        let (backends, rounds) = if s.smoke {
            (vec![Backend::Sqlite], 1)
        } else {
            (vec![Backend::Postgres, Backend::Sqlite], 3)
        };
        for backend in backends {
            results
                .crash
                .push(crash::recover(&fake, backend, rounds).await);
        }
    }
    if s.wants("background") {
        for shape in background_shapes(s.smoke) {
            results
                .fresh
                .push(background::keep_fresh(&fake, shape).await);
        }
        fake.set_token_lifetime(Some(86_400));
    }
    results
}

/// (8) and (9): 60 s tokens, renewed 10 s before expiry (with jitter), by 1
/// and 3 replicas; then 3 replicas against a faulty provider; then the
/// scale of 20,000 connections. The smoke run: one small configuration.
fn background_shapes(smoke: bool) -> Vec<background::Shape> {
    let base = background::Shape {
        label: "1 replica",
        replicas: 1,
        rate: 100.0,
        concurrency: 16,
        token_lifetime: 60,
        window: 10,
        measure: Duration::from_secs(30),
        faults: false,
    };
    if smoke {
        return vec![background::Shape {
            label: "1 replica (smoke)",
            rate: 20.0,
            concurrency: 4,
            token_lifetime: 20,
            window: 8,
            measure: Duration::from_secs(3),
            ..base
        }];
    }
    vec![
        base.clone(),
        background::Shape {
            label: "3 replicas",
            replicas: 3,
            ..base.clone()
        },
        background::Shape {
            label: "(9) 3 replicas, 10% 5xx + 10% slow",
            replicas: 3,
            faults: true,
            ..base.clone()
        },
        background::Shape {
            label: "3 replicas, 20,000 connections",
            replicas: 3,
            rate: 500.0,
            concurrency: 64,
            ..base
        },
    ]
}

/// (1) and (2) measured in alternating slices, so that drift in what the
/// machine gives (other load, CPU frequency) falls on both alike and the
/// ratio between them compares like with like.
async fn interleaved(
    clients: &Arc<Clients>,
    ids: &Arc<Vec<String>>,
    s: &Settings,
    c: usize,
) -> (stats::Stats, stats::Stats) {
    const SLICES: u32 = 3;
    let slice = Settings {
        duration: s.duration / SLICES,
        ..s.clone()
    };
    let (mut empty, mut cached) = (Vec::new(), Vec::new());
    for i in 0..SLICES {
        let slice = Settings {
            // Warm up before the first slice of each only.
            warmup: if i == 0 { s.warmup } else { Duration::ZERO },
            ..slice.clone()
        };
        empty.push(scenarios::empty(clients, &slice, c).await);
        cached.push(scenarios::get_token(clients, ids, &slice, c).await);
    }
    (stats::Stats::merge(&empty), stats::Stats::merge(&cached))
}

fn push(results: &mut Results, scenario: &str, concurrency: usize, stats: stats::Stats) {
    eprintln!(
        "{scenario:<45} c={concurrency:<4} {:>9.0} req/s  p50 {:>7.0} µs  p99 {:>7.0} µs  errors {}",
        stats.rps(),
        stats.quantile_us(0.5),
        stats.quantile_us(0.99),
        stats.errors
    );
    results.rows.push(Row {
        scenario: scenario.to_owned(),
        concurrency,
        stats,
    });
}

/// (6): connections whose tokens expire together, each hit by `callers`
/// concurrent GetAccessToken calls while the provider answers in 100 ms.
async fn storm(
    fake: &FakeProvider,
    s: &Settings,
    callers: usize,
) -> (usize, usize, f64, f64, Vec<usize>) {
    const PROVIDER_DELAY: Duration = Duration::from_millis(100);
    let db = BenchDb::create(Backend::Sqlite).await;
    let server = Server::start(&db, Some(fake), "").await;
    let clients = Arc::new(Clients::new(&server.addr, s.connections).await);
    fake.set_token_lifetime(Some(2));
    let ids = scenarios::connect_many(&clients.api(0), fake, s.storm_rounds).await;
    fake.set_token_lifetime(Some(86_400));
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    fake.set_delay(PROVIDER_DELAY);
    let mut added = Vec::new();
    let mut refreshes = Vec::new();
    for id in &ids {
        let before = fake.refreshes_accepted();
        for latency in scenarios::storm(&clients, id, callers).await {
            match latency {
                Some(l) => added.push(l.saturating_sub(PROVIDER_DELAY).as_secs_f64() * 1000.0),
                None => added.push(f64::INFINITY),
            }
        }
        refreshes.push(fake.refreshes_accepted() - before);
    }
    fake.set_delay(Duration::ZERO);
    server.stop().await;
    added.sort_by(f64::total_cmp);
    let q = |q: f64| added[((added.len() - 1) as f64 * q).round() as usize];
    eprintln!(
        "(6) storm of {callers}: added p50 {:.2} ms, p99 {:.2} ms, refreshes {refreshes:?}",
        q(0.5),
        q(0.99)
    );
    (callers, ids.len(), q(0.5), q(0.99), refreshes)
}

/// Peak RSS with `stored` connections of which `hot` are served repeatedly.
async fn peak_rss(fake: &FakeProvider, s: &Settings) -> (usize, usize, f64, f64) {
    let db = BenchDb::create(Backend::Sqlite).await;
    // The first start creates the schema.
    Server::start(&db, Some(fake), "").await.stop().await;
    let ids = bulk_insert(&db, s.stored).await;
    let server = Server::start(&db, Some(fake), "").await;
    let clients = Arc::new(Clients::new(&server.addr, s.connections).await);
    let hot = Arc::new(ids[..s.hot].to_vec());
    // Touch every hot connection, then keep them hot.
    let warm = Settings {
        warmup: Duration::ZERO,
        duration: s.duration.max(Duration::from_secs(1)),
        concurrencies: s.concurrencies.clone(),
        only: None,
        ..*s
    };
    let stats = scenarios::get_token(&clients, &hot, &warm, 64).await;
    let rss = server.peak_rss_kib().unwrap_or_default() as f64 / 1024.0;
    eprintln!(
        "RSS: {rss:.1} MiB after {} calls over {} hot of {} stored",
        stats.requests, s.hot, s.stored
    );
    let start = server.started_to_serving.as_secs_f64() * 1000.0;
    server.stop().await;
    (s.stored, s.hot, rss, start)
}

/// Rows written straight into the database, sealed with the server's key
/// exactly as it seals them.
async fn bulk_insert(db: &BenchDb, n: usize) -> Vec<String> {
    let key = authbroker::crypto::SealingKey::from_base64("k1", &db.key).expect("key");
    let conn = db.connect(1).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    let mut ids = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(1000) {
        let mut values = Vec::new();
        for i in chunk * 1000..((chunk + 1) * 1000).min(n) {
            let id = uuid::Uuid::now_v7().to_string();
            let slot = |field| authbroker::crypto::Slot {
                table: "connections",
                row: &id,
                field,
            };
            let access = key
                .seal(
                    &format!("access-{i:08}-{}", uuid::Uuid::new_v4().simple()),
                    slot("access_token"),
                )
                .into_stored();
            let refresh = key
                .seal(&format!("refresh-{i:08}"), slot("refresh_token"))
                .into_stored();
            values.push(format!(
                "('{id}', 'bench', 'ares', 'bulk-{i}', 'user-{i}', 'read write', 'ACTIVE', NULL, '{CALLBACK}', 'Bearer', \
                 '{access}', '{refresh}', {}, 'k1', 1, NULL, NULL, NULL, {now}, {now})",
                now + 86_400
            ));
            ids.push(id);
        }
        conn.execute_unprepared(&format!(
            "INSERT INTO connections (id, caller, provider, subject, provider_user_id, scopes, status, status_reason, \
             redirect_uri, token_type, access_token, refresh_token, access_token_expires_at, key_id, version, \
             refresh_lease_owner, refresh_lease_until, refresh_started_at, created_at, updated_at) VALUES {}",
            values.join(",")
        ))
        .await
        .expect("bulk insert");
    }
    let _ = conn.close().await;
    ids
}

/// Start to SERVING on SQLite: the first start (with migrations), then the
/// median of five restarts.
async fn startup(fake: &FakeProvider, s: &Settings) -> (f64, f64) {
    let db = BenchDb::create(Backend::Sqlite).await;
    let first = Server::start(&db, Some(fake), "").await;
    let first_ms = first.started_to_serving.as_secs_f64() * 1000.0;
    first.stop().await;
    let mut restarts = Vec::new();
    for _ in 0..if s.smoke { 3 } else { 5 } {
        let t = Instant::now();
        let server = Server::start(&db, Some(fake), "").await;
        restarts.push(server.started_to_serving.as_secs_f64() * 1000.0);
        let _ = t;
        server.stop().await;
    }
    restarts.sort_by(f64::total_cmp);
    (first_ms, restarts[restarts.len() / 2])
}

/// Writes the SVG and replaces the results section of BENCHMARKS.md.
fn write_results(results: &Results, targets: &[(String, bool)]) {
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::create_dir_all(format!("{root}/benchmarks")).expect("benchmarks/");
    std::fs::write(format!("{root}/benchmarks/latest.svg"), results.svg()).expect("svg");
    let mut section = format!("Machine: {}\n\n{}\n", machine(), results.table());
    section.push_str("\nTargets:\n\n");
    for (what, met) in targets {
        section.push_str(&format!("- {} {what}\n", if *met { "✅" } else { "❌" }));
    }
    let path = format!("{root}/BENCHMARKS.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let (start, end) = ("<!-- results:start -->", "<!-- results:end -->");
    let updated = match (doc.find(start), doc.find(end)) {
        (Some(a), Some(b)) if a < b => format!("{}{start}\n{section}{}", &doc[..a], &doc[b..]),
        _ => format!("{doc}\n{start}\n{section}{end}\n"),
    };
    std::fs::write(&path, updated).expect("BENCHMARKS.md");
    println!("wrote BENCHMARKS.md and benchmarks/latest.svg");
}
