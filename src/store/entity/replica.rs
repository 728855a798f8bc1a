//! `replicas`: the processes sharing the database, each seen recently while alive.

use sea_orm::entity::prelude::*;

/// One process.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "replicas")]
pub struct Model {
    /// The process's lease owner name (`host/pid/incarnation`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub owner: String,
    /// Unix seconds of its last heartbeat.
    pub seen_at: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
