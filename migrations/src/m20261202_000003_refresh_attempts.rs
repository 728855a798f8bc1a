//! What a refresh attempt leaves behind: when its request went to the
//! provider (so a holder that died before sending is resumed as a clean
//! retry), and when an attempt was interrupted after sending (kept until new
//! tokens are stored, so a rotation lost to a crash is never mistaken for the
//! provider's own revocation).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Connections {
    Table,
    RefreshSentAt,
    RefreshInterruptedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            Connections::RefreshSentAt,
            Connections::RefreshInterruptedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Connections::Table)
                        .add_column(ColumnDef::new(column).big_integer().null().to_owned())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Connections::RefreshSentAt,
            Connections::RefreshInterruptedAt,
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
