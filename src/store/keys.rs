//! Which keys the stored secrets are sealed under, and re-sealing them under
//! another: rows are read in batches and written back with a
//! compare-and-swap on their version and key id, without bumping the
//! version, so a refresh racing the re-seal wins and nothing is lost.

use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};

use super::entity::{auth_state, connection};
use crate::domain::Sealed;

type DbResult<T> = Result<T, sea_orm::DbErr>;

/// The key ids connections' tokens are sealed under.
pub(crate) async fn key_ids_in_use(db: &DatabaseConnection) -> DbResult<Vec<String>> {
    connection::Entity::find()
        .select_only()
        .column(connection::Column::KeyId)
        .distinct()
        .filter(connection::Column::AccessToken.is_not_null())
        .into_tuple()
        .all(db)
        .await
}

/// A few connections' sealed access tokens under `key_id`: (row id, sealed).
pub(crate) async fn sample(
    db: &DatabaseConnection,
    key_id: &str,
    n: u64,
) -> DbResult<Vec<(String, Sealed)>> {
    let rows: Vec<(String, Option<String>)> = connection::Entity::find()
        .select_only()
        .column(connection::Column::Id)
        .column(connection::Column::AccessToken)
        .filter(connection::Column::KeyId.eq(key_id))
        .filter(connection::Column::AccessToken.is_not_null())
        .limit(n)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, token)| Some((id, Sealed::from_stored(token?))))
        .collect())
}

/// A connection whose tokens are sealed under a key other than the active one.
pub(crate) struct Stale {
    pub(crate) id: String,
    pub(crate) version: i64,
    pub(crate) key_id: String,
    pub(crate) access_token: Option<Sealed>,
    pub(crate) refresh_token: Option<Sealed>,
}

/// Up to `limit` connections not sealed under `active`, after `after` (by id).
pub(crate) async fn stale_connections(
    db: &DatabaseConnection,
    active: &str,
    after: &str,
    limit: u64,
) -> DbResult<Vec<Stale>> {
    let rows = connection::Entity::find()
        .filter(connection::Column::KeyId.ne(active))
        .filter(connection::Column::AccessToken.is_not_null())
        .filter(connection::Column::Id.gt(after))
        .order_by_asc(connection::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Stale {
            id: r.id,
            version: r.version,
            key_id: r.key_id,
            access_token: r.access_token.map(Sealed::from_stored),
            refresh_token: r.refresh_token.map(Sealed::from_stored),
        })
        .collect())
}

/// How many connections are not sealed under `active`.
pub(crate) async fn count_stale(db: &DatabaseConnection, active: &str) -> DbResult<u64> {
    use sea_orm::PaginatorTrait;
    connection::Entity::find()
        .filter(connection::Column::KeyId.ne(active))
        .filter(connection::Column::AccessToken.is_not_null())
        .count(db)
        .await
}

/// Writes re-sealed tokens if the row is still what was read; returns
/// whether it was.
pub(crate) async fn write_resealed(
    db: &DatabaseConnection,
    stale: &Stale,
    key_id: &str,
    access_token: Sealed,
    refresh_token: Option<Sealed>,
) -> DbResult<bool> {
    let _gate = super::write_gate(db).await;
    let result = connection::Entity::update_many()
        .col_expr(
            connection::Column::AccessToken,
            Expr::value(access_token.into_stored()),
        )
        .col_expr(
            connection::Column::RefreshToken,
            Expr::value(refresh_token.map(Sealed::into_stored)),
        )
        .col_expr(connection::Column::KeyId, Expr::value(key_id))
        .filter(connection::Column::Id.eq(stale.id.as_str()))
        .filter(connection::Column::Version.eq(stale.version))
        .filter(connection::Column::KeyId.eq(stale.key_id.as_str()))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Pending BeginAuth states whose PKCE verifier is sealed under another key
/// than `active`: (state hash, sealed verifier).
pub(crate) async fn stale_states(
    db: &DatabaseConnection,
    active: &str,
) -> DbResult<Vec<(String, Sealed)>> {
    let rows: Vec<(String, Option<String>)> = auth_state::Entity::find()
        .select_only()
        .column(auth_state::Column::StateHash)
        .column(auth_state::Column::PkceVerifier)
        .filter(auth_state::Column::PkceVerifier.is_not_null())
        .filter(auth_state::Column::PkceVerifier.not_like(format!("v1.{active}.%")))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(hash, v)| Some((hash, Sealed::from_stored(v?))))
        .collect())
}

/// Writes a state's re-sealed verifier if it still holds `old`.
pub(crate) async fn write_resealed_state(
    db: &DatabaseConnection,
    state_hash: &str,
    old: &Sealed,
    new: Sealed,
) -> DbResult<()> {
    let _gate = super::write_gate(db).await;
    auth_state::Entity::update_many()
        .col_expr(
            auth_state::Column::PkceVerifier,
            Expr::value(new.into_stored()),
        )
        .filter(auth_state::Column::StateHash.eq(state_hash))
        .filter(auth_state::Column::PkceVerifier.eq(old.as_str()))
        .exec(db)
        .await?;
    Ok(())
}
