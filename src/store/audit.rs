//! The audit trail's table: rows are only ever inserted (in batches) and,
//! past the retention, deleted; nothing updates them.

use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::entity::audit_event::{ActiveModel, Column, Entity, Model};

type DbResult<T> = Result<T, sea_orm::DbErr>;

/// An event as stored.
pub(crate) type AuditRow = Model;

/// Appends `rows`.
pub(crate) async fn append(db: &DatabaseConnection, rows: Vec<AuditRow>) -> DbResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let models = rows.into_iter().map(|r| ActiveModel {
        id: Set(r.id),
        at: Set(r.at),
        caller: Set(r.caller),
        connection_id: Set(r.connection_id),
        action: Set(r.action),
        outcome: Set(r.outcome),
        detail: Set(r.detail),
        trace_id: Set(r.trace_id),
    });
    let _gate = super::write_gate(db).await;
    Entity::insert_many(models)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// What to look for.
#[derive(Debug, Default, Clone)]
pub struct AuditQuery {
    /// One connection's events.
    pub connection_id: Option<String>,
    /// One caller's events.
    pub caller: Option<String>,
    /// At or after this instant (Unix milliseconds).
    pub since_ms: Option<i64>,
    /// At most this many, oldest first.
    pub limit: u64,
}

/// The events matching `query`, oldest first.
pub(crate) async fn find(db: &DatabaseConnection, query: &AuditQuery) -> DbResult<Vec<AuditRow>> {
    let mut select = Entity::find();
    if let Some(id) = &query.connection_id {
        select = select.filter(Column::ConnectionId.eq(id.as_str()));
    }
    if let Some(caller) = &query.caller {
        select = select.filter(Column::Caller.eq(caller.as_str()));
    }
    if let Some(since) = query.since_ms {
        select = select.filter(Column::At.gte(since));
    }
    select
        .order_by_asc(Column::At)
        .order_by_asc(Column::Id)
        .limit(query.limit)
        .all(db)
        .await
}

/// Deletes events older than `before_ms`.
pub(crate) async fn purge(db: &DatabaseConnection, before_ms: i64) -> DbResult<u64> {
    let _gate = super::write_gate(db).await;
    Ok(Entity::delete_many()
        .filter(Column::At.lt(before_ms))
        .exec(db)
        .await?
        .rows_affected)
}
