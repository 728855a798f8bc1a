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
    /// The process holding a pending claim.
    pub(crate) claim_owner: Option<String>,
    /// When a pending claim lapses unless renewed (absent on rows from
    /// before claims had holders).
    pub(crate) claim_until: Option<i64>,
    /// When the pending attempt's request went to the provider.
    pub(crate) sent_at: Option<i64>,
}

fn to_entry(row: usage_record::Model) -> UsageEntry {
    UsageEntry {
        id: row.id,
        request_hash: row.request_hash,
        status: UsageStatus::from_stored(&row.status),
        provider_response: row.provider_response,
        error: row.error,
        updated_at: row.updated_at,
        claim_owner: row.claim_owner,
        claim_until: row.claim_until,
        sent_at: row.sent_at,
    }
}

/// A claim's holder and lease.
pub(crate) struct Claim<'a> {
    /// This process.
    pub(crate) owner: &'a str,
    /// Unix seconds.
    pub(crate) now: i64,
    /// When the claim lapses unless renewed.
    pub(crate) until: i64,
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
    /// Who claims it, until when.
    pub(crate) claim: Claim<'a>,
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
    let record = new_record(claim);
    let _gate = super::write_gate(db).await;
    match record.into_active_model().insert(db).await {
        Ok(_) => Ok(true),
        Err(e) if is_duplicate(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A concurrent duplicate inserted first: the unique index decided.
pub(super) fn is_duplicate(e: &sea_orm::DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// The pending row of a new claim.
pub(super) fn new_record(claim: NewUsage<'_>) -> usage_record::Model {
    usage_record::Model {
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
        claim_owner: Some(claim.claim.owner.to_owned()),
        claim_until: Some(claim.claim.until),
        sent_at: None,
        created_at: claim.claim.now,
        updated_at: claim.claim.now,
    }
}

/// Re-claims a record left retryable by an earlier attempt.
pub(crate) async fn claim_retry(
    db: &DatabaseConnection,
    id: &str,
    claim: Claim<'_>,
) -> DbResult<bool> {
    let _gate = super::write_gate(db).await;
    let result = claimed(Entity::update_many(), &claim)
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(UsageStatus::Retryable.as_str()))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Takes over a pending claim whose holder is gone before its request was
/// sent: nothing reached the provider, so the key is simply reported.
pub(crate) async fn reclaim_unsent(
    db: &DatabaseConnection,
    id: &str,
    dead_holder: Option<&str>,
    claim: Claim<'_>,
) -> DbResult<bool> {
    let _gate = super::write_gate(db).await;
    let result = claimed(Entity::update_many(), &claim)
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(UsageStatus::Pending.as_str()))
        .filter(Column::SentAt.is_null())
        .filter(holder_gone(claim.now, dead_holder))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// The claim's columns for a new attempt by `claim.owner`.
fn claimed(update: sea_orm::UpdateMany<Entity>, claim: &Claim<'_>) -> sea_orm::UpdateMany<Entity> {
    update
        .col_expr(Column::Status, Expr::value(UsageStatus::Pending.as_str()))
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .col_expr(Column::ClaimOwner, Expr::value(claim.owner))
        .col_expr(Column::ClaimUntil, Expr::value(claim.until))
        .col_expr(Column::SentAt, Expr::value(Option::<i64>::None))
        .col_expr(Column::UpdatedAt, Expr::value(claim.now))
}

/// Lapses every pending claim (the embedded database at start: their
/// holder was the one process, now gone); returns how many.
pub(crate) async fn lapse_all_claims(db: &DatabaseConnection) -> DbResult<u64> {
    let _gate = super::write_gate(db).await;
    Ok(Entity::update_many()
        .col_expr(Column::ClaimUntil, Expr::value(0i64))
        .filter(Column::Status.eq(UsageStatus::Pending.as_str()))
        .filter(Column::ClaimOwner.is_not_null())
        .exec(db)
        .await?
        .rows_affected)
}

/// A claim whose lease lapsed, or whose holder is known dead.
fn holder_gone(now: i64, dead_holder: Option<&str>) -> sea_orm::Condition {
    let mut gone = sea_orm::Condition::any().add(Column::ClaimUntil.lte(now));
    if let Some(dead) = dead_holder {
        gone = gone.add(Column::ClaimOwner.eq(dead));
    }
    gone
}

/// Records that the holder's usage request is going to the provider now.
pub(crate) async fn mark_sent(
    db: &DatabaseConnection,
    id: &str,
    owner: &str,
    now: i64,
) -> DbResult<()> {
    let _gate = super::write_gate(db).await;
    Entity::update_many()
        .col_expr(Column::SentAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::ClaimOwner.eq(owner))
        .filter(Column::SentAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Extends this holder's claim to `until`; returns whether it still held it.
pub(crate) async fn renew_claim(
    db: &DatabaseConnection,
    id: &str,
    owner: &str,
    until: i64,
) -> DbResult<bool> {
    let _gate = super::write_gate(db).await;
    let result = Entity::update_many()
        .col_expr(Column::ClaimUntil, Expr::value(until))
        .filter(Column::Id.eq(id))
        .filter(Column::ClaimOwner.eq(owner))
        .filter(Column::Status.eq(UsageStatus::Pending.as_str()))
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
        .map(to_entry))
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
        .map(to_entry))
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
        .col_expr(Column::ClaimOwner, Expr::value(Option::<String>::None))
        .col_expr(Column::ClaimUntil, Expr::value(Option::<i64>::None))
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

/// Turns a pending claim whose holder died after sending (or a claim from
/// before claims had holders, past its age limit) into `unknown`. A live,
/// renewed claim is left alone.
pub(crate) async fn mark_unknown(
    db: &DatabaseConnection,
    id: &str,
    dead_holder: Option<&str>,
    now: i64,
) -> DbResult<()> {
    let _gate = super::write_gate(db).await;
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(UsageStatus::Unknown.as_str()))
        .col_expr(
            Column::Error,
            Expr::value("the process reporting it stopped after sending it to the provider"),
        )
        .col_expr(Column::ClaimOwner, Expr::value(Option::<String>::None))
        .col_expr(Column::ClaimUntil, Expr::value(Option::<i64>::None))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(UsageStatus::Pending.as_str()))
        .filter(
            sea_orm::Condition::any()
                .add(Column::ClaimUntil.is_null())
                .add(holder_gone(now, dead_holder)),
        )
        .exec(db)
        .await?;
    Ok(())
}
