//! Labels: the caller's own attributes of a connection (JSON object text,
//! `{}` when none), carried from BeginAuth through its state; the state also
//! remembers the connection a flow reconnects in place. An index on
//! (caller, created_at, id) serves ListConnections' stable order page by page.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Connections {
    Table,
    Caller,
    CreatedAt,
    Id,
    Labels,
}

#[derive(DeriveIden)]
enum AuthStates {
    Table,
    Labels,
    ConnectionId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Connections::Table)
                    .add_column(
                        ColumnDef::new(Connections::Labels)
                            .text()
                            .not_null()
                            .default("{}"),
                    )
                    .to_owned(),
            )
            .await?;
        // SQLite alters one column at a time.
        for column in [AuthStates::Labels, AuthStates::ConnectionId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AuthStates::Table)
                        .add_column(ColumnDef::new(column).text().null())
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_connections_caller_created")
                    .table(Connections::Table)
                    .col(Connections::Caller)
                    .col(Connections::CreatedAt)
                    .col(Connections::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_connections_caller_created")
                    .table(Connections::Table)
                    .to_owned(),
            )
            .await?;
        for column in [AuthStates::Labels, AuthStates::ConnectionId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AuthStates::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Connections::Table)
                    .drop_column(Connections::Labels)
                    .to_owned(),
            )
            .await
    }
}
