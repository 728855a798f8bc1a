//! The integration suite: the real `authbroker` binary against strict fake
//! providers, on SQLite and on PostgreSQL.

/// Turns `async fn scenario(backend: Backend)` items into two tests each,
/// `scenario::sqlite` and `scenario::postgres` (skipped with a line saying so
/// when no PostgreSQL is reachable, unless `CI` is set).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(crate::helpers::Backend::Sqlite).await
                }

                #[tokio::test]
                async fn postgres() {
                    if crate::db::postgres_available(concat!(stringify!($name), "::postgres")) {
                        super::$name(crate::helpers::Backend::Postgres).await
                    }
                }
            }
        )*
    };
}

/// Says on every run whether the PostgreSQL variants ran or were skipped.
#[test]
fn postgres_availability() {
    if db::postgres_available("every ::postgres test") {
        println!("PostgreSQL reachable: the ::postgres variants ran");
    }
}

mod audit;
mod background;
mod bad_input;
mod client;
mod cluster;
mod collector;
mod db;
mod error_reasons;
mod fake;
mod fake_oidc;
mod fake_strictness;
mod faults;
mod flows;
mod helpers;
mod in_process;
mod isolation;
mod keys;
mod lifecycle;
mod limits;
mod listing;
mod metrics;
mod oidc;
mod oidc_provider;
mod persistence;
mod policy;
mod proxy;
mod revocation;
mod server;
mod states;
mod takeover;
mod telemetry;
mod tls;
mod tokens;
mod usage;
