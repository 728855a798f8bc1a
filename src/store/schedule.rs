//! The background refresher's queue: connections whose `refresh_due_at` has
//! come, claimed in batches by pushing that instant forward. On PostgreSQL
//! the batch is read `FOR UPDATE SKIP LOCKED`, so replicas claiming at the
//! same moment take disjoint rows instead of waiting on each other; on
//! SQLite one process owns the database and the write gate serialises it.

use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
    sea_query::{Expr, LockBehavior, LockType},
};

use super::{
    connections::stored_id,
    entity::connection::{Column, Entity},
};
use crate::domain::{Caller, ConnectionId, ConnectionStatus, ProviderId};

type DbResult<T> = Result<T, sea_orm::DbErr>;

/// A connection claimed for a background refresh.
#[derive(Debug, Clone)]
pub(crate) struct Due {
    /// The connection.
    pub(crate) id: ConnectionId,
    /// Its caller.
    pub(crate) caller: Caller,
    /// Its version when claimed.
    pub(crate) version: i64,
    /// Its access token's expiry (Unix seconds).
    pub(crate) expires_at: i64,
    /// When its tokens were written (about when they were issued).
    pub(crate) issued_at: i64,
    /// When it was due, for the lateness metric.
    pub(crate) due_at: i64,
}

/// Claims up to `limit` of `provider`'s connections due at `now`, soonest
/// first, by moving their due instant to `until`: another replica skips them
/// until then, and if this one dies they come due again.
pub(crate) async fn claim_due(
    db: &DatabaseConnection,
    provider: &ProviderId,
    now: i64,
    until: i64,
    limit: u64,
) -> DbResult<Vec<Due>> {
    let _gate = super::write_gate(db).await;
    let txn = db.begin().await?;
    let rows = Entity::find()
        .filter(Column::Provider.eq(provider.as_str()))
        .filter(Column::RefreshDueAt.lte(now))
        .filter(Column::Status.eq(ConnectionStatus::Active.as_str()))
        .order_by_asc(Column::RefreshDueAt)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .all(&txn)
        .await?;
    if rows.is_empty() {
        txn.commit().await?;
        return Ok(Vec::new());
    }
    Entity::update_many()
        .col_expr(Column::RefreshDueAt, Expr::value(until))
        .filter(Column::Id.is_in(rows.iter().map(|r| r.id.clone())))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            Some(Due {
                id: stored_id(&row.id).ok()?,
                caller: Caller::trusted(row.caller),
                version: row.version,
                expires_at: row.access_token_expires_at?,
                issued_at: row.updated_at,
                due_at: row.refresh_due_at?,
            })
        })
        .collect())
}

/// Stores a new due instant for a connection still at `version` (one
/// claimed too early: its row predates the schedule or the window changed).
pub(crate) async fn reschedule(
    db: &DatabaseConnection,
    id: ConnectionId,
    version: i64,
    due_at: i64,
) -> DbResult<()> {
    let _gate = super::write_gate(db).await;
    Entity::update_many()
        .col_expr(Column::RefreshDueAt, Expr::value(due_at))
        .filter(Column::Id.eq(id.to_string()))
        .filter(Column::Version.eq(version))
        .exec(db)
        .await?;
    Ok(())
}

/// How many connections of each provider are due at `now` (the queue depth).
pub(crate) async fn depth(db: &DatabaseConnection, now: i64) -> DbResult<Vec<(String, u64)>> {
    let rows: Vec<(String, i64)> = Entity::find()
        .select_only()
        .column(Column::Provider)
        .column_as(Column::Id.count(), "n")
        .filter(Column::RefreshDueAt.lte(now))
        .group_by(Column::Provider)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(p, n)| (p, n.max(0) as u64))
        .collect())
}
