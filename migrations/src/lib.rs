//! Schema migrations for authbroker, one file per change. They run on SQLite
//! and PostgreSQL alike, so they use only portable column types: instants are
//! Unix seconds in BIGINT columns, sealed secrets are TEXT.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_tables;
mod m20261125_000002_refresh_lease;
mod m20261202_000003_refresh_attempts;
mod m20261202_000004_usage_claims;
mod m20261202_000005_refresh_schedule;
mod m20261202_000006_audit_events;
mod m20261202_000007_labels_and_reconnect;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_tables::Migration),
            Box::new(m20261125_000002_refresh_lease::Migration),
            Box::new(m20261202_000003_refresh_attempts::Migration),
            Box::new(m20261202_000004_usage_claims::Migration),
            Box::new(m20261202_000005_refresh_schedule::Migration),
            Box::new(m20261202_000006_audit_events::Migration),
            Box::new(m20261202_000007_labels_and_reconnect::Migration),
        ]
    }
}
