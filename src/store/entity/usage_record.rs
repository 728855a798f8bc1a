//! `usage_ledger`: every RecordUsage key and what became of it.

use sea_orm::entity::prelude::*;

/// One idempotency key's record.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_ledger")]
pub struct Model {
    /// UUID, returned as `usage_id`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Caller that reported it.
    pub caller: String,
    /// Connection charged.
    pub connection_id: String,
    /// Caller-chosen key.
    pub idempotency_key: String,
    /// Hex SHA-256 of the request payload, to detect key reuse with other data.
    pub request_hash: String,
    /// Usage reason.
    pub usage: String,
    /// Credits charged.
    pub credits: f64,
    /// pending, succeeded, rejected, retryable or unknown.
    pub status: String,
    /// How many times the provider was called for this key.
    pub attempts: i32,
    /// Last HTTP status from the provider.
    pub provider_status: Option<i32>,
    /// The provider's answer (JSON text).
    pub provider_response: Option<String>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Process holding the pending claim.
    pub claim_owner: Option<String>,
    /// Unix seconds when the claim lapses unless its holder renews it.
    pub claim_until: Option<i64>,
    /// Unix seconds when the pending attempt's request went to the provider.
    pub sent_at: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
