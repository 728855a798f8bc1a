//! Pending authorization states: stored on BeginAuth, taken exactly once by
//! CompleteAuth.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
};

use super::entity::auth_state::{self, Column, Entity};

pub use auth_state::Model as AuthState;

/// What taking a state found.
pub enum Taken {
    /// The state was valid and is now consumed.
    Valid(AuthState),
    /// No such state, or already used.
    Unknown,
    /// It expired (and is now deleted).
    Expired,
    /// Another caller began it; it is left untouched.
    OtherCaller,
}

/// Stores a new state.
pub async fn insert(db: &DatabaseConnection, state: AuthState) -> Result<(), sea_orm::DbErr> {
    let _gate = super::write_gate(db).await;
    state.into_active_model().insert(db).await.map(|_| ())
}

/// Consumes the state with this hash for `caller`. The delete decides the
/// race: of two concurrent takers only the one whose delete removed the row wins.
pub async fn take(
    db: &DatabaseConnection,
    state_hash: &str,
    caller: &str,
    now: i64,
) -> Result<Taken, sea_orm::DbErr> {
    let Some(state) = Entity::find_by_id(state_hash).one(db).await? else {
        return Ok(Taken::Unknown);
    };
    if state.caller != caller {
        return Ok(Taken::OtherCaller);
    }
    let gate = super::write_gate(db).await;
    let deleted = Entity::delete_many()
        .filter(Column::StateHash.eq(state_hash))
        .exec(db)
        .await?
        .rows_affected;
    drop(gate);
    if deleted == 0 {
        return Ok(Taken::Unknown);
    }
    if state.expires_at <= now {
        return Ok(Taken::Expired);
    }
    Ok(Taken::Valid(state))
}

/// Deletes states that expired before `now`; returns how many.
pub async fn delete_expired(db: &DatabaseConnection, now: i64) -> Result<u64, sea_orm::DbErr> {
    let _gate = super::write_gate(db).await;
    Ok(Entity::delete_many()
        .filter(Column::ExpiresAt.lte(now))
        .exec(db)
        .await?
        .rows_affected)
}
