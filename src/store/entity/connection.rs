//! `connections`: a caller's end user linked to a provider account.

use sea_orm::entity::prelude::*;

/// One connection. Token columns hold sealed values only.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "connections")]
pub struct Model {
    /// UUID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Owning caller.
    pub caller: String,
    /// Provider id.
    pub provider: String,
    /// The caller's end user.
    pub subject: String,
    /// Account id at the provider, or empty.
    pub provider_user_id: String,
    /// Granted scopes, space-separated.
    pub scopes: String,
    /// ACTIVE, NEEDS_REAUTH or REVOKED.
    pub status: String,
    /// Why the status last changed, for operators.
    pub status_reason: Option<String>,
    /// Redirect URI of the flow that created it (some refreshes need it).
    pub redirect_uri: String,
    /// Usually "Bearer".
    pub token_type: String,
    /// Sealed access token.
    pub access_token: Option<String>,
    /// Sealed refresh token.
    pub refresh_token: Option<String>,
    /// Unix seconds.
    pub access_token_expires_at: Option<i64>,
    /// Id of the key the tokens are sealed under.
    pub key_id: String,
    /// Bumped on every token write; writes compare-and-swap on it.
    pub version: i64,
    /// Process holding the refresh lease, if any.
    pub refresh_lease_owner: Option<String>,
    /// Unix seconds when the refresh lease lapses.
    pub refresh_lease_until: Option<i64>,
    /// Unix seconds when the last refresh began; left set when a process died mid-refresh.
    pub refresh_started_at: Option<i64>,
    /// Unix seconds when the lease holder's request went to the provider.
    pub refresh_sent_at: Option<i64>,
    /// Unix seconds when an attempt was interrupted after sending; kept until
    /// new tokens are stored.
    pub refresh_interrupted_at: Option<i64>,
    /// Unix seconds when the background refresher should renew the tokens;
    /// NULL when nothing can (no refresh token, or not active).
    pub refresh_due_at: Option<i64>,
    /// The caller's labels, a JSON object of strings.
    pub labels: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
