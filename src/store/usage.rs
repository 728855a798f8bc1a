//! The usage ledger: one row per (caller, idempotency key), claimed before the
//! provider is called and settled after, so a key reaches the provider once.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    sea_query::{Expr, ExprTrait},
};

use super::entity::usage_record::{self, Column, Entity};

pub use usage_record::Model as UsageRecord;

/// Ledger states.
pub mod status {
    /// Claimed; the provider call is in flight.
    pub const PENDING: &str = "pending";
    /// The provider confirmed.
    pub const SUCCEEDED: &str = "succeeded";
    /// The provider refused (e.g. not enough credits); final.
    pub const REJECTED: &str = "rejected";
    /// The provider certainly did not record it (unreachable, 5xx before
    /// processing, 429); the same key may try again.
    pub const RETRYABLE: &str = "retryable";
    /// The request may or may not have been recorded (timeout after sending).
    pub const UNKNOWN: &str = "unknown";
}

/// How a settled attempt ended.
pub struct Settlement<'a> {
    /// One of [`status`].
    pub status: &'static str,
    /// Provider HTTP status, if it answered.
    pub provider_status: Option<u16>,
    /// Provider answer (JSON text), if any.
    pub provider_response: Option<&'a str>,
    /// Error text, if it failed.
    pub error: Option<&'a str>,
}

/// Inserts a pending record; `Ok(false)` when the key already exists.
pub async fn claim_new(
    db: &DatabaseConnection,
    record: UsageRecord,
) -> Result<bool, sea_orm::DbErr> {
    let _gate = super::write_gate(db).await;
    match record.into_active_model().insert(db).await {
        Ok(_) => Ok(true),
        // A concurrent duplicate inserted first: the unique index decided.
        Err(e)
            if matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Re-claims a record left retryable by an earlier attempt.
pub async fn claim_retry(
    db: &DatabaseConnection,
    id: &str,
    now: i64,
) -> Result<bool, sea_orm::DbErr> {
    let _gate = super::write_gate(db).await;
    let result = Entity::update_many()
        .col_expr(Column::Status, Expr::value(status::PENDING))
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(status::RETRYABLE))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// The record for a caller's key.
pub async fn find(
    db: &DatabaseConnection,
    caller: &str,
    key: &str,
) -> Result<Option<UsageRecord>, sea_orm::DbErr> {
    Entity::find()
        .filter(Column::Caller.eq(caller))
        .filter(Column::IdempotencyKey.eq(key))
        .one(db)
        .await
}

/// Records the outcome of the pending attempt.
pub async fn settle(
    db: &DatabaseConnection,
    id: &str,
    s: Settlement<'_>,
    now: i64,
) -> Result<(), sea_orm::DbErr> {
    let _gate = super::write_gate(db).await;
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(s.status))
        .col_expr(
            Column::ProviderStatus,
            Expr::value(s.provider_status.map(i32::from)),
        )
        .col_expr(
            Column::ProviderResponse,
            Expr::value(s.provider_response.map(str::to_owned)),
        )
        .col_expr(Column::Error, Expr::value(s.error.map(str::to_owned)))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        // A live attempt that a duplicate judged abandoned (unknown) still
        // records what the provider actually said.
        .filter(Column::Status.is_in([status::PENDING, status::UNKNOWN]))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes settled records last updated before `before`; pending ones stay.
pub async fn delete_settled_before(
    db: &DatabaseConnection,
    before: i64,
) -> Result<u64, sea_orm::DbErr> {
    let _gate = super::write_gate(db).await;
    Ok(Entity::delete_many()
        .filter(Column::UpdatedAt.lt(before))
        .filter(Column::Status.ne(status::PENDING))
        .exec(db)
        .await?
        .rows_affected)
}

/// Turns an abandoned pending claim into `unknown`.
pub async fn mark_unknown(
    db: &DatabaseConnection,
    id: &str,
    now: i64,
) -> Result<(), sea_orm::DbErr> {
    let _gate = super::write_gate(db).await;
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(status::UNKNOWN))
        .col_expr(
            Column::Error,
            Expr::value("the attempt was abandoned mid-call (process stopped)"),
        )
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(status::PENDING))
        .exec(db)
        .await?;
    Ok(())
}
