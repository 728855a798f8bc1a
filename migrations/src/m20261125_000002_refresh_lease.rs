//! The refresh lease: which process is refreshing a connection, until when,
//! and since when. It makes "exactly one refresh" hold across replicas and
//! leaves a trace when a process dies mid-refresh.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Connections {
    Table,
    RefreshLeaseOwner,
    RefreshLeaseUntil,
    RefreshStartedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            ColumnDef::new(Connections::RefreshLeaseOwner)
                .string_len(128)
                .null()
                .to_owned(),
            ColumnDef::new(Connections::RefreshLeaseUntil)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Connections::RefreshStartedAt)
                .big_integer()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Connections::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_connections_expiry")
                    .table(Connections::Table)
                    .col(Alias::new("status"))
                    .col(Alias::new("access_token_expires_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_connections_expiry")
                    .table(Connections::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Connections::RefreshStartedAt,
            Connections::RefreshLeaseUntil,
            Connections::RefreshLeaseOwner,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Connections::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
