//! The `authbroker` command: parse the CLI, load config, init logging, run.

use std::{collections::BTreeMap, path::PathBuf, process::ExitCode};

use authbroker::{app, config, config::Settings, telemetry};
use clap::{Parser, Subcommand};

/// Brokers OAuth2 connections to external providers for the services of a cluster.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML config file (also AUTHBROKER_CONFIG). Without one, built-in defaults
    /// and AUTHBROKER_* variables apply.
    #[arg(long, short, global = true, env = config::env::CONFIG)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gRPC server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration and exit; prints nothing secret.
    CheckConfig,
    /// Print a new random encryption key (base64 of 32 bytes).
    GenerateKey,
    /// Re-seal every stored secret still under an older key with the active
    /// key, so the older key can leave the ring. Safe while replicas serve;
    /// run it again to resume.
    Reseal,
    /// Print audit events, oldest first, one JSON object per line.
    Audit {
        /// Only this connection's events.
        #[arg(long)]
        connection: Option<String>,
        /// Only this caller's events.
        #[arg(long)]
        caller: Option<String>,
        /// Only events since then: Unix seconds, or an age like 90m, 24h, 7d.
        #[arg(long)]
        since: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 1000)]
        limit: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::GenerateKey) = cli.command {
        println!("{}", authbroker::crypto::SealingKey::generate_base64());
        return ExitCode::SUCCESS;
    }
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let settings = match Settings::load(cli.config.as_deref(), &env) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("authbroker: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("authbroker: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let log_filter = env.get(config::env::LOG).cloned();
    let result = runtime.block_on(async move {
        // Inside the runtime: the OTLP exporters' clients live on it.
        let telemetry = telemetry::init(
            settings.log_format,
            log_filter.as_deref(),
            settings.metrics_listen.is_some(),
        );
        let result = match cli.command {
            Some(Command::CheckConfig) => {
                println!(
                    "configuration OK: {} provider(s), {} caller(s), listen {}",
                    settings.providers.len(),
                    settings.callers.len(),
                    settings.listen
                );
                Ok(())
            }
            Some(Command::Migrate) => migrate(&settings).await,
            Some(Command::Reseal) => app::reseal(&settings).await,
            Some(Command::Audit {
                connection,
                caller,
                since,
                limit,
            }) => app::print_audit(&settings, connection, caller, since, limit).await,
            Some(Command::Serve) | None => app::serve(settings, shutdown_signal()).await,
            Some(Command::GenerateKey) => Ok(()),
        };
        if let Err(e) = &result {
            tracing::error!(error = format!("{e:#}"), "authbroker failed");
        }
        telemetry.shutdown();
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("authbroker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Applies migrations and closes the database, which checkpoints SQLite's
/// write-ahead log into the file.
async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let db = app::migrate(settings).await?;
    tracing::info!("migrations applied");
    Ok(db.close().await?)
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a SIGTERM that arrives while
/// the server starts must drain it, not kill it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Some(mut int), Some(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {},
                    _ = term.recv() => {},
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown signal received: draining in-flight calls");
    }
}
