//! Logging setup. Secrets never reach a log line because they are typed
//! ([`crate::secret::Secret`] prints `[redacted]`) and provider bodies are
//! never logged.

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

/// Default filter: sqlx and the HTTP stacks log every statement or frame at
/// info/debug, which drowns the service's own lines.
const DEFAULT_FILTER: &str =
    "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,h2=warn,hyper=warn,tower=warn,reqwest=warn";

/// Installs the global subscriber writing to stderr. `filter` is the
/// `AUTHBROKER_LOG` value, if set.
pub fn init(format: LogFormat, filter: Option<&str>) {
    let filter = EnvFilter::try_new(filter.unwrap_or(DEFAULT_FILTER))
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
