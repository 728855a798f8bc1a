//! `auth_states`: flows begun by BeginAuth and not yet completed.

use sea_orm::entity::prelude::*;

/// One pending authorization.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "auth_states")]
pub struct Model {
    /// Hex SHA-256 of the state value; the value itself is never stored.
    #[sea_orm(primary_key, auto_increment = false)]
    pub state_hash: String,
    /// Caller that began the flow.
    pub caller: String,
    /// Provider id.
    pub provider: String,
    /// The caller's end user.
    pub subject: String,
    /// Redirect URI the flow uses.
    pub redirect_uri: String,
    /// Requested scopes, space-separated.
    pub scopes: String,
    /// Whether it was a sign-up link.
    pub sign_up: bool,
    /// Sealed PKCE verifier, when the provider uses PKCE.
    pub pkce_verifier: Option<String>,
    /// Labels for the connection, a JSON object of strings; NULL for none.
    pub labels: Option<String>,
    /// The connection this flow reconnects in place, if any.
    pub connection_id: Option<String>,
    /// Unix seconds after which the state is refused.
    pub expires_at: i64,
    /// Unix seconds.
    pub created_at: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
