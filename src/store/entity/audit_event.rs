//! `audit_events`: the append-only audit trail. Never holds a secret.

use sea_orm::entity::prelude::*;

/// One event.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    /// UUID v7 (time-ordered).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Unix milliseconds.
    pub at: i64,
    /// The caller, or the presented identity's description for a failed
    /// authentication.
    pub caller: String,
    /// The connection concerned, if any.
    pub connection_id: Option<String>,
    /// What happened (`token_served`, `usage_charged`, ...).
    pub action: String,
    /// How it ended (`ok`, or the error reason).
    pub outcome: String,
    /// Non-secret facts (provider, rule, usage id, credits).
    pub detail: Option<String>,
    /// The W3C trace id of the call, when it had one.
    pub trace_id: Option<String>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
