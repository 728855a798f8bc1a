//! The usage ledger: one row per (caller, idempotency key), claimed before the
//! provider is called and settled after, so a key reaches the provider once.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    sea_query::{Expr, ExprTrait},
};

use super::entity::usage_record::{self, Column, Entity};

use crate::domain::{Caller, UsageStatus};

type DbResult<T> = Result<T, sea_orm::DbErr>;

/// A ledger row as the usage service sees it.
pub(crate) struct UsageEntry {
    /// Ledger id (a UUID).
    pub(crate) id: String,
    /// Hash of connection, usage and credits: the same key must mean the same request.
    pub(crate) request_hash: String,
    /// Where it stands.
    pub(crate) status: UsageStatus,
    /// The provider's confirmation (JSON text), once succeeded.
    pub(crate) provider_response: Option<String>,
    /// Error text of the last attempt.
    pub(crate) error: Option<String>,
    /// Unix seconds.
    pub(crate) updated_at: i64,
}

/// A claim for a new key.
pub(crate) struct NewUsage<'a> {
    /// Ledger id.
    pub(crate) id: &'a str,
    /// The caller.
    pub(crate) caller: &'a Caller,
    /// The connection charged.
    pub(crate) connection_id: String,
    /// The caller's key.
    pub(crate) idempotency_key: &'a str,
    /// See [`UsageEntry::request_hash`].
    pub(crate) request_hash: &'a str,
    /// The usage label.
    pub(crate) usage: &'a str,
    /// Credits.
    pub(crate) credits: f64,
    /// Unix seconds.
    pub(crate) now: i64,
}

/// How a settled attempt ended.
pub(crate) struct Settlement<'a> {
    /// The new status.
    pub(crate) status: UsageStatus,
    /// Provider HTTP status, if it answered.
    pub(crate) provider_status: Option<u16>,
    /// Provider answer (JSON text), if any.
    pub(crate) provider_response: Option<&'a str>,
    /// Error text, if it failed.
    pub(crate) error: Option<&'a str>,
}

/// Inserts a pending record; `Ok(false)` when the key already exists.
pub(crate) async fn claim_new(db: &DatabaseConnection, claim: NewUsage<'_>) -> DbResult<bool> {
    let record = usage_record::Model {
        id: claim.id.to_owned(),
        caller: claim.caller.as_str().to_owned(),
        connection_id: claim.connection_id,
        idempotency_key: claim.idempotency_key.to_owned(),
        request_hash: claim.request_hash.to_owned(),
        usage: claim.usage.to_owned(),
        credits: claim.credits,
        status: UsageStatus::Pending.as_str().to_owned(),
        attempts: 1,
        provider_status: None,
        provider_response: None,
        error: None,
        created_at: claim.now,
        updated_at: claim.now,
    };
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
pub(crate) async fn claim_retry(db: &DatabaseConnection, id: &str, now: i64) -> DbResult<bool> {
    let _gate = super::write_gate(db).await;
    let result = Entity::update_many()
        .col_expr(Column::Status, Expr::value(UsageStatus::Pending.as_str()))
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(UsageStatus::Retryable.as_str()))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// The record for a caller's key.
pub(crate) async fn find(
    db: &DatabaseConnection,
    caller: &Caller,
    key: &str,
) -> DbResult<Option<UsageEntry>> {
    Ok(Entity::find()
        .filter(Column::Caller.eq(caller.as_str()))
        .filter(Column::IdempotencyKey.eq(key))
        .one(db)
        .await?
        .map(|row| UsageEntry {
            id: row.id,
            request_hash: row.request_hash,
            status: UsageStatus::from_stored(&row.status),
            provider_response: row.provider_response,
            error: row.error,
            updated_at: row.updated_at,
        }))
}

/// The caller's record with this ledger id.
pub(crate) async fn find_by_id(
    db: &DatabaseConnection,
    caller: &Caller,
    id: &str,
) -> DbResult<Option<UsageEntry>> {
    Ok(Entity::find_by_id(id)
        .filter(Column::Caller.eq(caller.as_str()))
        .one(db)
        .await?
        .map(|row| UsageEntry {
            id: row.id,
            request_hash: row.request_hash,
            status: UsageStatus::from_stored(&row.status),
            provider_response: row.provider_response,
            error: row.error,
            updated_at: row.updated_at,
        }))
}

/// Settles an unknown outcome as verified by a caller; returns whether the
/// record was still unknown.
pub(crate) async fn resolve(
    db: &DatabaseConnection,
    id: &str,
    to: UsageStatus,
    note: &str,
    now: i64,
) -> DbResult<bool> {
    let response = (to == UsageStatus::Succeeded).then(|| "{}".to_owned());
    let _gate = super::write_gate(db).await;
    let result = Entity::update_many()
        .col_expr(Column::Status, Expr::value(to.as_str()))
        .col_expr(Column::ProviderResponse, Expr::value(response))
        .col_expr(Column::Error, Expr::value(note))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(UsageStatus::Unknown.as_str()))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Records the outcome of the pending attempt.
pub(crate) async fn settle(
    db: &DatabaseConnection,
    id: &str,
    s: Settlement<'_>,
    now: i64,
) -> DbResult<()> {
    let _gate = super::write_gate(db).await;
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(s.status.as_str()))
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
        .filter(
            Column::Status.is_in([UsageStatus::Pending.as_str(), UsageStatus::Unknown.as_str()]),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes settled records last updated before `before`; pending ones stay.
pub(crate) async fn delete_settled_before(db: &DatabaseConnection, before: i64) -> DbResult<u64> {
    let _gate = super::write_gate(db).await;
    Ok(Entity::delete_many()
        .filter(Column::UpdatedAt.lt(before))
        .filter(Column::Status.ne(UsageStatus::Pending.as_str()))
        .exec(db)
        .await?
        .rows_affected)
}

/// Turns an abandoned pending claim into `unknown`.
pub(crate) async fn mark_unknown(db: &DatabaseConnection, id: &str, now: i64) -> DbResult<()> {
    let _gate = super::write_gate(db).await;
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(UsageStatus::Unknown.as_str()))
        .col_expr(
            Column::Error,
            Expr::value("the attempt was abandoned mid-call (process stopped)"),
        )
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(UsageStatus::Pending.as_str()))
        .exec(db)
        .await?;
    Ok(())
}
