//! Connections: look-ups scoped to their caller, and token writes that
//! compare-and-swap on `version` so a stale writer can never overwrite a
//! newer (possibly rotated) refresh token.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, UpdateMany, sea_query::Expr,
};

use super::entity::connection::{self, Column, Entity};

pub use connection::Model as ConnectionRow;

/// Connection states as stored.
pub mod status {
    /// Tokens stored and served.
    pub const ACTIVE: &str = "ACTIVE";
    /// The provider refused the refresh token.
    pub const NEEDS_REAUTH: &str = "NEEDS_REAUTH";
    /// Tokens deleted on request.
    pub const REVOKED: &str = "REVOKED";
}

/// Sealed token columns written together.
pub struct TokenWrite {
    /// Sealed access token.
    pub access_token: String,
    /// Sealed refresh token (`None` clears it).
    pub refresh_token: Option<String>,
    /// Token type.
    pub token_type: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Key id used to seal.
    pub key_id: String,
}

/// The caller's connection with this id.
pub async fn find(
    db: &DatabaseConnection,
    caller: &str,
    id: &str,
) -> Result<Option<ConnectionRow>, sea_orm::DbErr> {
    Entity::find_by_id(id)
        .filter(Column::Caller.eq(caller))
        .one(db)
        .await
}

/// What serving a stored token needs, and nothing more: the hot path after a
/// cache miss reads these six columns instead of the whole row.
pub struct ServingRow {
    /// ACTIVE, NEEDS_REAUTH or REVOKED.
    pub status: String,
    /// Why the status last changed.
    pub status_reason: Option<String>,
    /// Sealed access token.
    pub access_token: Option<String>,
    /// Usually "Bearer".
    pub token_type: String,
    /// Unix seconds.
    pub access_token_expires_at: Option<i64>,
}

/// status, status_reason, access_token, token_type, access_token_expires_at.
type ServingColumns = (String, Option<String>, Option<String>, String, Option<i64>);

/// The serving columns of the caller's connection with this id.
pub async fn find_serving(
    db: &DatabaseConnection,
    caller: &str,
    id: &str,
) -> Result<Option<ServingRow>, sea_orm::DbErr> {
    let row: Option<ServingColumns> = Entity::find_by_id(id)
        .filter(Column::Caller.eq(caller))
        .select_only()
        .column(Column::Status)
        .column(Column::StatusReason)
        .column(Column::AccessToken)
        .column(Column::TokenType)
        .column(Column::AccessTokenExpiresAt)
        .into_tuple()
        .one(db)
        .await?;
    Ok(row.map(
        |(status, status_reason, access_token, token_type, access_token_expires_at)| ServingRow {
            status,
            status_reason,
            access_token,
            token_type,
            access_token_expires_at,
        },
    ))
}

/// The connection for one provider account of one subject, if any.
pub async fn find_account(
    db: &DatabaseConnection,
    caller: &str,
    provider: &str,
    subject: &str,
    provider_user_id: &str,
) -> Result<Option<ConnectionRow>, sea_orm::DbErr> {
    Entity::find()
        .filter(Column::Caller.eq(caller))
        .filter(Column::Provider.eq(provider))
        .filter(Column::Subject.eq(subject))
        .filter(Column::ProviderUserId.eq(provider_user_id))
        .one(db)
        .await
}

/// The caller's connections, newest first, optionally filtered.
pub async fn list(
    db: &DatabaseConnection,
    caller: &str,
    subject: Option<&str>,
    provider: Option<&str>,
) -> Result<Vec<ConnectionRow>, sea_orm::DbErr> {
    let mut query = Entity::find().filter(Column::Caller.eq(caller));
    if let Some(subject) = subject {
        query = query.filter(Column::Subject.eq(subject));
    }
    if let Some(provider) = provider {
        query = query.filter(Column::Provider.eq(provider));
    }
    query
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .limit(1000)
        .all(db)
        .await
}

/// Inserts a new connection.
pub async fn insert(
    db: &DatabaseConnection,
    row: ConnectionRow,
) -> Result<ConnectionRow, sea_orm::DbErr> {
    let _gate = super::write_gate(db).await;
    row.into_active_model().insert(db).await
}

/// Writes new tokens if the row still has `expected_version`; returns whether
/// it did. Also re-activates the connection and may update scopes.
pub async fn write_tokens(
    db: &DatabaseConnection,
    id: &str,
    expected_version: i64,
    tokens: TokenWrite,
    scopes: Option<&str>,
    redirect_uri: Option<&str>,
    now: i64,
) -> Result<bool, sea_orm::DbErr> {
    let _gate = super::write_gate(db).await;
    let mut update = Entity::update_many()
        .col_expr(Column::AccessToken, Expr::value(tokens.access_token))
        .col_expr(Column::RefreshToken, Expr::value(tokens.refresh_token))
        .col_expr(Column::TokenType, Expr::value(tokens.token_type))
        .col_expr(Column::AccessTokenExpiresAt, Expr::value(tokens.expires_at))
        .col_expr(Column::KeyId, Expr::value(tokens.key_id))
        .col_expr(Column::Status, Expr::value(status::ACTIVE))
        .col_expr(Column::StatusReason, Expr::value(Option::<String>::None))
        .col_expr(Column::Version, Expr::value(expected_version + 1))
        .col_expr(Column::UpdatedAt, Expr::value(now));
    update = without_lease(update);
    if let Some(scopes) = scopes {
        update = update.col_expr(Column::Scopes, Expr::value(scopes));
    }
    if let Some(uri) = redirect_uri {
        update = update.col_expr(Column::RedirectUri, Expr::value(uri));
    }
    let result = update
        .filter(Column::Id.eq(id))
        .filter(Column::Version.eq(expected_version))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Sets a status (clearing tokens for REVOKED) if the row still has
/// `expected_version`; returns whether it did.
pub async fn set_status(
    db: &DatabaseConnection,
    id: &str,
    expected_version: i64,
    new_status: &str,
    reason: &str,
    now: i64,
) -> Result<bool, sea_orm::DbErr> {
    let _gate = super::write_gate(db).await;
    let mut update = Entity::update_many()
        .col_expr(Column::Status, Expr::value(new_status))
        .col_expr(Column::StatusReason, Expr::value(reason))
        .col_expr(Column::Version, Expr::value(expected_version + 1))
        .col_expr(Column::UpdatedAt, Expr::value(now));
    update = without_lease(update);
    if new_status == status::REVOKED {
        update = update
            .col_expr(Column::AccessToken, Expr::value(Option::<String>::None))
            .col_expr(Column::RefreshToken, Expr::value(Option::<String>::None))
            .col_expr(
                Column::AccessTokenExpiresAt,
                Expr::value(Option::<i64>::None),
            );
    }
    let result = update
        .filter(Column::Id.eq(id))
        .filter(Column::Version.eq(expected_version))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Clears the refresh lease columns: every token or status write ends any
/// refresh in progress.
fn without_lease(update: UpdateMany<Entity>) -> UpdateMany<Entity> {
    update
        .col_expr(
            Column::RefreshLeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(Column::RefreshLeaseUntil, Expr::value(Option::<i64>::None))
        .col_expr(Column::RefreshStartedAt, Expr::value(Option::<i64>::None))
}

/// Takes the refresh lease of a row still at `version` whose lease is free or
/// lapsed; returns whether this process now holds it. The row's version is
/// not bumped: waiters on other replicas watch the version for the result.
pub async fn acquire_lease(
    db: &DatabaseConnection,
    id: &str,
    version: i64,
    owner: &str,
    now: i64,
    until: i64,
) -> Result<bool, sea_orm::DbErr> {
    let _gate = super::write_gate(db).await;
    let result = Entity::update_many()
        .col_expr(Column::RefreshLeaseOwner, Expr::value(owner))
        .col_expr(Column::RefreshLeaseUntil, Expr::value(until))
        .col_expr(Column::RefreshStartedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::Version.eq(version))
        .filter(
            Condition::any()
                .add(Column::RefreshLeaseUntil.is_null())
                .add(Column::RefreshLeaseUntil.lte(now)),
        )
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Gives the lease back after a refresh that changed nothing (provider
/// unavailable), so the next caller need not wait for it to lapse.
pub async fn release_lease(
    db: &DatabaseConnection,
    id: &str,
    owner: &str,
) -> Result<(), sea_orm::DbErr> {
    let _gate = super::write_gate(db).await;
    without_lease(Entity::update_many())
        .filter(Column::Id.eq(id))
        .filter(Column::RefreshLeaseOwner.eq(owner))
        .exec(db)
        .await?;
    Ok(())
}

/// Active connections with a refresh token whose access token expires before
/// `before`, soonest first.
pub async fn expiring(
    db: &DatabaseConnection,
    before: i64,
    limit: u64,
) -> Result<Vec<ConnectionRow>, sea_orm::DbErr> {
    Entity::find()
        .filter(Column::Status.eq(status::ACTIVE))
        .filter(Column::RefreshToken.is_not_null())
        .filter(Column::AccessTokenExpiresAt.lt(before))
        .order_by_asc(Column::AccessTokenExpiresAt)
        .limit(limit)
        .all(db)
        .await
}

/// Whether any connection holds sealed tokens (used to refuse generating a
/// new key over data sealed under a lost one).
pub async fn any_sealed(db: &DatabaseConnection) -> Result<bool, sea_orm::DbErr> {
    Ok(Entity::find()
        .filter(Column::AccessToken.is_not_null())
        .one(db)
        .await?
        .is_some())
}

/// How many connections have each status.
pub async fn count_by_status(
    db: &DatabaseConnection,
) -> Result<Vec<(String, u64)>, sea_orm::DbErr> {
    let rows: Vec<(String, i64)> = Entity::find()
        .select_only()
        .column(Column::Status)
        .column_as(Column::Id.count(), "n")
        .group_by(Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(s, n)| (s, n.max(0) as u64))
        .collect())
}
