//! Who holds a usage claim and until when (renewed while the attempt runs),
//! and when its request went to the provider: a claim whose holder died is
//! recognised within one claim lease, and one that died before sending is
//! simply reported again.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UsageLedger {
    Table,
    ClaimOwner,
    ClaimUntil,
    SentAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            ColumnDef::new(UsageLedger::ClaimOwner)
                .string_len(128)
                .null()
                .to_owned(),
            ColumnDef::new(UsageLedger::ClaimUntil)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(UsageLedger::SentAt)
                .big_integer()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(UsageLedger::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            UsageLedger::ClaimOwner,
            UsageLedger::ClaimUntil,
            UsageLedger::SentAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(UsageLedger::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
