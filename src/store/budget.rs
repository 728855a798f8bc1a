//! A caller's daily credit budget, checked and spent in one transaction: on
//! PostgreSQL under a per-caller advisory lock held to the commit, on SQLite
//! under the process's write gate. Concurrent reports, on any replica,
//! cannot together overspend it.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    IntoActiveModel, QueryFilter, QuerySelect, Statement, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};

use super::{
    entity::usage_record::{Column, Entity},
    usage::{NewUsage, is_duplicate, new_record},
};
use crate::domain::UsageStatus;

type DbResult<T> = Result<T, sea_orm::DbErr>;

/// How a budgeted claim ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Budgeted {
    /// Inserted: the report may go ahead.
    Claimed,
    /// The key exists already (the caller decides from the row).
    Exists,
    /// Refused: `used` credits are reported since `since` already.
    Over {
        /// Credits charged or possibly charged in the window.
        used: f64,
    },
}

/// Inserts the pending row for a new key if the caller's credits reported
/// since `since` (pending, succeeded or of unknown outcome: each may be
/// charged) plus this claim's stay within `max`.
pub(crate) async fn claim_new_within(
    db: &DatabaseConnection,
    claim: NewUsage<'_>,
    max: f64,
    since: i64,
) -> DbResult<Budgeted> {
    let caller = claim.caller.as_str().to_owned();
    let credits = claim.credits;
    let _gate = super::write_gate(db).await;
    let txn = db.begin().await?;
    if db.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [super::advisory_key("authbroker-credits:", &caller).into()],
        ))
        .await?;
    }
    let used: Option<f64> = Entity::find()
        .select_only()
        .column_as(Expr::col(Column::Credits).sum(), "used")
        .filter(Column::Caller.eq(caller.as_str()))
        .filter(Column::CreatedAt.gt(since))
        .filter(Column::Status.is_in([
            UsageStatus::Pending.as_str(),
            UsageStatus::Succeeded.as_str(),
            UsageStatus::Unknown.as_str(),
        ]))
        .into_tuple()
        .one(&txn)
        .await?
        .flatten();
    let used = used.unwrap_or(0.0);
    if used + credits > max {
        txn.rollback().await?;
        return Ok(Budgeted::Over { used });
    }
    match new_record(claim).into_active_model().insert(&txn).await {
        Ok(_) => {
            txn.commit().await?;
            Ok(Budgeted::Claimed)
        }
        Err(e) if is_duplicate(&e) => {
            txn.rollback().await?;
            Ok(Budgeted::Exists)
        }
        Err(e) => Err(e),
    }
}
