//! Pending authorization states: stored on BeginAuth, taken exactly once by
//! CompleteAuth. Only the state's hash is stored.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
};

use super::entity::auth_state::{Column, Entity, Model};
use crate::domain::{
    Caller, ConnectionId, Labels, ProviderId, RedirectUri, Scopes, Sealed, Subject,
};

type DbResult<T> = Result<T, sea_orm::DbErr>;

/// A begun authorization flow.
pub(crate) struct PendingAuth {
    /// Hex SHA-256 of the state value.
    pub(crate) state_hash: String,
    /// The caller that began it.
    pub(crate) caller: Caller,
    /// The provider.
    pub(crate) provider: ProviderId,
    /// The caller's end user.
    pub(crate) subject: Subject,
    /// The redirect URI in the authorization URL.
    pub(crate) redirect_uri: RedirectUri,
    /// Requested scopes (after defaults).
    pub(crate) scopes: Scopes,
    /// Whether it was a sign-up link.
    pub(crate) sign_up: bool,
    /// The sealed PKCE verifier, when the provider uses PKCE.
    pub(crate) pkce_verifier: Option<Sealed>,
    /// Labels for the connection.
    pub(crate) labels: Labels,
    /// The connection reconnected in place, if any.
    pub(crate) connection_id: Option<ConnectionId>,
    /// Unix seconds.
    pub(crate) expires_at: i64,
    /// Unix seconds.
    pub(crate) created_at: i64,
}

/// Stores a new state.
pub(crate) async fn insert(db: &DatabaseConnection, state: PendingAuth) -> DbResult<()> {
    let row = Model {
        state_hash: state.state_hash,
        caller: state.caller.as_str().to_owned(),
        provider: state.provider.as_str().to_owned(),
        subject: state.subject.as_str().to_owned(),
        redirect_uri: state.redirect_uri.as_str().to_owned(),
        scopes: state.scopes.to_stored(),
        sign_up: state.sign_up,
        pkce_verifier: state.pkce_verifier.map(Sealed::into_stored),
        labels: (!state.labels.is_empty()).then(|| state.labels.to_stored()),
        connection_id: state.connection_id.map(|id| id.to_string()),
        expires_at: state.expires_at,
        created_at: state.created_at,
    };
    let _gate = super::write_gate(db).await;
    row.into_active_model().insert(db).await.map(|_| ())
}

/// The state with this hash, if it exists.
pub(crate) async fn find(
    db: &DatabaseConnection,
    state_hash: &str,
) -> DbResult<Option<PendingAuth>> {
    Ok(Entity::find_by_id(state_hash)
        .one(db)
        .await?
        .map(|row| PendingAuth {
            state_hash: row.state_hash,
            caller: Caller::trusted(row.caller),
            provider: ProviderId::trusted(row.provider),
            subject: Subject::trusted(row.subject),
            redirect_uri: RedirectUri::trusted(row.redirect_uri),
            scopes: Scopes::from_stored(&row.scopes),
            sign_up: row.sign_up,
            pkce_verifier: row.pkce_verifier.map(Sealed::from_stored),
            labels: row
                .labels
                .as_deref()
                .map(Labels::from_stored)
                .unwrap_or_default(),
            // Written from a ConnectionId; anything else names no connection.
            connection_id: row
                .connection_id
                .as_deref()
                .and_then(|id| ConnectionId::parse(id).ok()),
            expires_at: row.expires_at,
            created_at: row.created_at,
        }))
}

/// Deletes the state; returns whether this call did. Of two concurrent
/// takers only the one whose delete removed the row wins.
pub(crate) async fn delete(db: &DatabaseConnection, state_hash: &str) -> DbResult<bool> {
    let _gate = super::write_gate(db).await;
    Ok(Entity::delete_many()
        .filter(Column::StateHash.eq(state_hash))
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// Deletes states that expired before `now`; returns how many.
pub(crate) async fn delete_expired(db: &DatabaseConnection, now: i64) -> DbResult<u64> {
    let _gate = super::write_gate(db).await;
    Ok(Entity::delete_many()
        .filter(Column::ExpiresAt.lte(now))
        .exec(db)
        .await?
        .rows_affected)
}
