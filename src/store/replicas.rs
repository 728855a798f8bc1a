//! The processes sharing a PostgreSQL database: each records a heartbeat,
//! and counts those seen recently to take its share of provider rate limits.

use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    sea_query::OnConflict,
};

use super::entity::replica::{ActiveModel, Column, Entity};

type DbResult<T> = Result<T, sea_orm::DbErr>;

/// Records that `owner` is alive at `now`.
pub(crate) async fn beat(db: &DatabaseConnection, owner: &str, now: i64) -> DbResult<()> {
    let row = ActiveModel {
        owner: sea_orm::Set(owner.to_owned()),
        seen_at: sea_orm::Set(now),
    };
    Entity::insert(row)
        .on_conflict(
            OnConflict::column(Column::Owner)
                .update_column(Column::SeenAt)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// How many processes were seen at or after `since`.
pub(crate) async fn live(db: &DatabaseConnection, since: i64) -> DbResult<u64> {
    Entity::find()
        .filter(Column::SeenAt.gte(since))
        .count(db)
        .await
}

/// Forgets `owner` (a clean exit) and every process not seen since `before`.
pub(crate) async fn remove(db: &DatabaseConnection, owner: &str, before: i64) -> DbResult<()> {
    Entity::delete_many()
        .filter(
            Condition::any()
                .add(Column::Owner.eq(owner))
                .add(Column::SeenAt.lt(before)),
        )
        .exec(db)
        .await?;
    Ok(())
}
