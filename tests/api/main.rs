//! The integration suite: the real `authbroker` binary against strict fake
//! providers, on SQLite and on PostgreSQL.

/// Turns `async fn scenario(backend: Backend)` items into two tests each,
/// `scenario::sqlite` and `scenario::postgres`.
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
                    super::$name(crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

mod bad_input;
mod cluster;
mod collector;
mod db;
mod fake;
mod fake_strictness;
mod faults;
mod flows;
mod helpers;
mod isolation;
mod lifecycle;
mod persistence;
mod proxy;
mod server;
mod states;
mod telemetry;
mod tokens;
mod usage;
