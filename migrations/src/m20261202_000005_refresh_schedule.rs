//! The background refresher's schedule: each connection stores when it is due
//! (`refresh_due_at`, NULL when nothing can renew it), indexed per provider,
//! so replicas claim due work with an index range scan however many
//! connections there are; and a table of live replicas, from which each
//! takes its share of a provider's rate limit.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Connections {
    Table,
    Provider,
    RefreshDueAt,
}

#[derive(DeriveIden)]
enum Replicas {
    Table,
    Owner,
    SeenAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Connections::Table)
                    .add_column(
                        ColumnDef::new(Connections::RefreshDueAt)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Rows written before the schedule existed are due at once; the
        // refresher then checks each against its tokens and stores the
        // real instant without calling the provider.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE connections SET refresh_due_at = 0 \
                 WHERE status = 'ACTIVE' AND refresh_token IS NOT NULL",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_connections_refresh_due")
                    .table(Connections::Table)
                    .col(Connections::Provider)
                    .col(Connections::RefreshDueAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Replicas::Table)
                    .col(
                        ColumnDef::new(Replicas::Owner)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Replicas::SeenAt).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Replicas::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_connections_refresh_due")
                    .table(Connections::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Connections::Table)
                    .drop_column(Connections::RefreshDueAt)
                    .to_owned(),
            )
            .await
    }
}
