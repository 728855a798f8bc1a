//! Connections: look-ups scoped to their caller, and token writes that
//! compare-and-swap on `version` so a stale writer can never overwrite a
//! newer (possibly rotated) refresh token. Rows become domain values here;
//! nothing above the store sees a sea-orm model.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, UpdateMany, sea_query::Expr,
};

use super::entity::connection::{self, Column, Entity};
use crate::{
    domain::{
        Caller, Connection, ConnectionId, ConnectionStatus, Labels, ProviderId, RedirectUri,
        Scopes, Sealed, Subject,
    },
    flow::refresh::RefreshSnapshot,
};

type Row = connection::Model;
type DbResult<T> = Result<T, sea_orm::DbErr>;

/// Sealed token columns written together.
pub(crate) struct TokenWrite {
    /// Sealed access token.
    pub(crate) access_token: Sealed,
    /// Sealed refresh token (`None` clears it).
    pub(crate) refresh_token: Option<Sealed>,
    /// Token type.
    pub(crate) token_type: String,
    /// Unix seconds.
    pub(crate) expires_at: i64,
    /// Key id used to seal.
    pub(crate) key_id: String,
    /// When the background refresher should renew them (see
    /// `flow::schedule`); `None` when it cannot.
    pub(crate) refresh_due_at: Option<i64>,
}

/// A connection with what refreshing it needs: its sealed tokens, version
/// and lease.
pub(crate) struct TokenRow {
    /// The connection.
    pub(crate) connection: Connection,
    /// Bumped by every token or status write.
    pub(crate) version: i64,
    /// Usually "Bearer".
    pub(crate) token_type: String,
    /// Sealed access token.
    pub(crate) access_token: Option<Sealed>,
    /// Sealed refresh token.
    pub(crate) refresh_token: Option<Sealed>,
    /// The lease holder, if one is recorded.
    pub(crate) lease_owner: Option<String>,
    /// What the refresh decision needs.
    pub(crate) snapshot: RefreshSnapshot,
}

/// A stored id; only [`ConnectionId`] ever writes one, so a foreign value is
/// corrupt data, reported as a database error rather than a panic.
pub(super) fn stored_id(text: &str) -> DbResult<ConnectionId> {
    ConnectionId::parse(text)
        .map_err(|_| sea_orm::DbErr::Type(format!("stored connection id {text:?} is not a UUID")))
}

fn to_connection(row: &Row) -> DbResult<Connection> {
    Ok(Connection {
        id: stored_id(&row.id)?,
        caller: Caller::trusted(&row.caller),
        provider: ProviderId::trusted(&row.provider),
        subject: Subject::trusted(&row.subject),
        provider_user_id: row.provider_user_id.clone(),
        scopes: Scopes::from_stored(&row.scopes),
        status: ConnectionStatus::from_stored(&row.status),
        status_reason: row.status_reason.clone(),
        redirect_uri: RedirectUri::trusted(&row.redirect_uri),
        access_token_expires_at: row.access_token_expires_at,
        labels: Labels::from_stored(&row.labels),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn to_token_row(row: Row) -> DbResult<TokenRow> {
    let connection = to_connection(&row)?;
    Ok(TokenRow {
        snapshot: RefreshSnapshot {
            expires_at: row.access_token_expires_at,
            version: row.version,
            lease_until: row.refresh_lease_until,
            // Only the refresher knows which holders are its own dead
            // incarnations.
            holder_dead: false,
            // A send without a holder is not an attempt in progress.
            sent_at: row
                .refresh_sent_at
                .filter(|_| row.refresh_lease_owner.is_some()),
            interrupted_at: row.refresh_interrupted_at,
            // Every token write sets updated_at; status changes leave no
            // servable token behind.
            issued_at: row.updated_at,
        },
        connection,
        version: row.version,
        token_type: row.token_type,
        access_token: row.access_token.map(Sealed::from_stored),
        refresh_token: row.refresh_token.map(Sealed::from_stored),
        lease_owner: row.refresh_lease_owner,
    })
}

/// The caller's connection with this id.
pub(crate) async fn find(
    db: &DatabaseConnection,
    caller: &Caller,
    id: ConnectionId,
) -> DbResult<Option<Connection>> {
    find_row(db, caller, id)
        .await?
        .as_ref()
        .map(to_connection)
        .transpose()
}

/// The caller's connection with this id, with its tokens and lease.
pub(crate) async fn find_tokens(
    db: &DatabaseConnection,
    caller: &Caller,
    id: ConnectionId,
) -> DbResult<Option<TokenRow>> {
    find_row(db, caller, id)
        .await?
        .map(to_token_row)
        .transpose()
}

async fn find_row(
    db: &DatabaseConnection,
    caller: &Caller,
    id: ConnectionId,
) -> DbResult<Option<Row>> {
    Entity::find_by_id(id.to_string())
        .filter(Column::Caller.eq(caller.as_str()))
        .one(db)
        .await
}

/// What serving a stored token needs, and nothing more: the hot path after a
/// cache miss reads these columns instead of the whole row.
pub(crate) struct ServingRow {
    /// The provider (for error details).
    pub(crate) provider: ProviderId,
    /// Where the connection stands.
    pub(crate) status: ConnectionStatus,
    /// Why the status last changed.
    pub(crate) status_reason: Option<String>,
    /// Sealed access token.
    pub(crate) access_token: Option<Sealed>,
    /// Usually "Bearer".
    pub(crate) token_type: String,
    /// Unix seconds.
    pub(crate) access_token_expires_at: Option<i64>,
    /// The scopes granted.
    pub(crate) scopes: Scopes,
}

/// provider, status, status_reason, access_token, token_type,
/// access_token_expires_at, scopes.
type ServingColumns = (
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<i64>,
    String,
);

/// The serving columns of the caller's connection with this id.
pub(crate) async fn find_serving(
    db: &DatabaseConnection,
    caller: &Caller,
    id: ConnectionId,
) -> DbResult<Option<ServingRow>> {
    let row: Option<ServingColumns> = Entity::find_by_id(id.to_string())
        .filter(Column::Caller.eq(caller.as_str()))
        .select_only()
        .column(Column::Provider)
        .column(Column::Status)
        .column(Column::StatusReason)
        .column(Column::AccessToken)
        .column(Column::TokenType)
        .column(Column::AccessTokenExpiresAt)
        .column(Column::Scopes)
        .into_tuple()
        .one(db)
        .await?;
    Ok(row.map(
        |(provider, status, status_reason, access_token, token_type, expires_at, scopes)| {
            ServingRow {
                provider: ProviderId::trusted(provider),
                status: ConnectionStatus::from_stored(&status),
                status_reason,
                access_token: access_token.map(Sealed::from_stored),
                token_type,
                access_token_expires_at: expires_at,
                scopes: Scopes::from_stored(&scopes),
            }
        },
    ))
}

/// The caller's connection with this id and its version.
pub(crate) async fn find_versioned(
    db: &DatabaseConnection,
    caller: &Caller,
    id: ConnectionId,
) -> DbResult<Option<(Connection, i64)>> {
    find_row(db, caller, id)
        .await?
        .map(|row| Ok((to_connection(&row)?, row.version)))
        .transpose()
}

/// The connection (and its version) for one provider account of one subject, if any.
pub(crate) async fn find_account(
    db: &DatabaseConnection,
    caller: &Caller,
    provider: &ProviderId,
    subject: &Subject,
    provider_user_id: &str,
) -> DbResult<Option<(Connection, i64)>> {
    Entity::find()
        .filter(Column::Caller.eq(caller.as_str()))
        .filter(Column::Provider.eq(provider.as_str()))
        .filter(Column::Subject.eq(subject.as_str()))
        .filter(Column::ProviderUserId.eq(provider_user_id))
        .one(db)
        .await?
        .map(|row| Ok((to_connection(&row)?, row.version)))
        .transpose()
}

/// ListConnections' filters; `None` matches everything.
#[derive(Default)]
pub(crate) struct ListFilter<'a> {
    /// Only this end user's.
    pub(crate) subject: Option<&'a Subject>,
    /// Only this provider's.
    pub(crate) provider: Option<&'a ProviderId>,
    /// Only in this status.
    pub(crate) status: Option<ConnectionStatus>,
    /// Only connections carrying every one of these labels.
    pub(crate) labels: Option<&'a Labels>,
}

/// Where a page starts: after this (created_at, id) in the list's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageAfter {
    /// The last listed connection's creation (Unix seconds).
    pub(crate) created_at: i64,
    /// Its id.
    pub(crate) id: String,
}

/// Up to `limit` of the caller's connections matching `filter`, newest
/// first (created_at, then id, descending: a stable order, so a page
/// boundary never skips or repeats one), starting after `after`.
pub(crate) async fn list(
    db: &DatabaseConnection,
    caller: &Caller,
    filter: &ListFilter<'_>,
    after: Option<&PageAfter>,
    limit: u64,
) -> DbResult<Vec<Connection>> {
    let mut query = Entity::find().filter(Column::Caller.eq(caller.as_str()));
    if let Some(subject) = filter.subject {
        query = query.filter(Column::Subject.eq(subject.as_str()));
    }
    if let Some(provider) = filter.provider {
        query = query.filter(Column::Provider.eq(provider.as_str()));
    }
    if let Some(status) = filter.status {
        query = query.filter(Column::Status.eq(status.as_str()));
    }
    if let Some(after) = after {
        query = query.filter(listed_after(after));
    }
    let ordered = query
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id);
    let Some(wanted) = filter.labels.filter(|l| !l.is_empty()) else {
        return ordered
            .limit(limit)
            .all(db)
            .await?
            .iter()
            .map(to_connection)
            .collect();
    };
    // Labels are matched here, in batches along the index's order, so the
    // same query runs on SQLite and PostgreSQL; a page still holds up to
    // `limit` matches and ends where the last one does.
    let mut found = Vec::new();
    let mut cursor: Option<PageAfter> = None;
    loop {
        let mut batch = ordered.clone();
        if let Some(c) = &cursor {
            batch = batch.filter(listed_after(c));
        }
        let rows = batch.limit(LABEL_SCAN_BATCH).all(db).await?;
        let last = rows.last().map(|r| PageAfter {
            created_at: r.created_at,
            id: r.id.clone(),
        });
        for row in &rows {
            if Labels::from_stored(&row.labels).contains_all(wanted) {
                found.push(to_connection(row)?);
                if found.len() as u64 == limit {
                    return Ok(found);
                }
            }
        }
        if (rows.len() as u64) < LABEL_SCAN_BATCH {
            return Ok(found);
        }
        cursor = last;
    }
}

/// The rows after `after` in the list's order (created_at, id descending).
fn listed_after(after: &PageAfter) -> Condition {
    Condition::any()
        .add(Column::CreatedAt.lt(after.created_at))
        .add(
            Condition::all()
                .add(Column::CreatedAt.eq(after.created_at))
                .add(Column::Id.lt(after.id.as_str())),
        )
}

/// Rows read at a time when matching labels.
const LABEL_SCAN_BATCH: u64 = 500;

/// Replaces the labels of the caller's connection; its new state, or `None`
/// when there is no such connection.
pub(crate) async fn set_labels(
    db: &DatabaseConnection,
    caller: &Caller,
    id: ConnectionId,
    labels: &Labels,
    now: i64,
) -> DbResult<Option<Connection>> {
    {
        let _gate = super::write_gate(db).await;
        let result = Entity::update_many()
            .col_expr(Column::Labels, Expr::value(labels.to_stored()))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .filter(Column::Id.eq(id.to_string()))
            .filter(Column::Caller.eq(caller.as_str()))
            .exec(db)
            .await?;
        if result.rows_affected == 0 {
            return Ok(None);
        }
    }
    find(db, caller, id).await
}

/// Inserts a new, active connection with its first tokens.
pub(crate) async fn insert(
    db: &DatabaseConnection,
    connection: &Connection,
    tokens: TokenWrite,
) -> DbResult<()> {
    let row = Row {
        id: connection.id.to_string(),
        caller: connection.caller.as_str().to_owned(),
        provider: connection.provider.as_str().to_owned(),
        subject: connection.subject.as_str().to_owned(),
        provider_user_id: connection.provider_user_id.clone(),
        scopes: connection.scopes.to_stored(),
        labels: connection.labels.to_stored(),
        status: connection.status.as_str().to_owned(),
        status_reason: connection.status_reason.clone(),
        redirect_uri: connection.redirect_uri.as_str().to_owned(),
        token_type: tokens.token_type,
        access_token: Some(tokens.access_token.into_stored()),
        refresh_token: tokens.refresh_token.map(Sealed::into_stored),
        access_token_expires_at: Some(tokens.expires_at),
        key_id: tokens.key_id,
        version: 1,
        refresh_lease_owner: None,
        refresh_lease_until: None,
        refresh_started_at: None,
        refresh_sent_at: None,
        refresh_interrupted_at: None,
        refresh_due_at: tokens.refresh_due_at,
        created_at: connection.created_at,
        updated_at: connection.updated_at,
    };
    let _gate = super::write_gate(db).await;
    row.into_active_model().insert(db).await.map(|_| ())
}

/// What else a token write may change.
#[derive(Default)]
pub(crate) struct AlsoWrite<'a> {
    /// The scopes granted, when the provider said.
    pub(crate) scopes: Option<&'a Scopes>,
    /// The redirect URI of a new flow.
    pub(crate) redirect_uri: Option<&'a RedirectUri>,
    /// New labels.
    pub(crate) labels: Option<&'a Labels>,
}

/// Writes new tokens if the row still has `expected_version`; returns whether
/// it did. Also re-activates the connection and may update scopes, redirect
/// URI and labels.
pub(crate) async fn write_tokens(
    db: &DatabaseConnection,
    id: ConnectionId,
    expected_version: i64,
    tokens: TokenWrite,
    also: AlsoWrite<'_>,
    now: i64,
) -> DbResult<bool> {
    let _gate = super::write_gate(db).await;
    let mut update = Entity::update_many()
        .col_expr(
            Column::AccessToken,
            Expr::value(tokens.access_token.into_stored()),
        )
        .col_expr(
            Column::RefreshToken,
            Expr::value(tokens.refresh_token.map(Sealed::into_stored)),
        )
        .col_expr(Column::TokenType, Expr::value(tokens.token_type))
        .col_expr(Column::AccessTokenExpiresAt, Expr::value(tokens.expires_at))
        .col_expr(Column::KeyId, Expr::value(tokens.key_id))
        .col_expr(Column::RefreshDueAt, Expr::value(tokens.refresh_due_at))
        .col_expr(
            Column::Status,
            Expr::value(ConnectionStatus::Active.as_str()),
        )
        .col_expr(Column::StatusReason, Expr::value(Option::<String>::None))
        .col_expr(Column::Version, Expr::value(expected_version + 1))
        .col_expr(Column::UpdatedAt, Expr::value(now));
    update = without_lease(update);
    if let Some(scopes) = also.scopes {
        update = update.col_expr(Column::Scopes, Expr::value(scopes.to_stored()));
    }
    if let Some(uri) = also.redirect_uri {
        update = update.col_expr(Column::RedirectUri, Expr::value(uri.as_str()));
    }
    if let Some(labels) = also.labels {
        update = update.col_expr(Column::Labels, Expr::value(labels.to_stored()));
    }
    let result = update
        .filter(Column::Id.eq(id.to_string()))
        .filter(Column::Version.eq(expected_version))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Sets a status (clearing tokens for REVOKED) if the row still has
/// `expected_version`; returns whether it did.
pub(crate) async fn set_status(
    db: &DatabaseConnection,
    id: ConnectionId,
    expected_version: i64,
    new_status: ConnectionStatus,
    reason: &str,
    now: i64,
) -> DbResult<bool> {
    let _gate = super::write_gate(db).await;
    let mut update = Entity::update_many()
        .col_expr(Column::Status, Expr::value(new_status.as_str()))
        .col_expr(Column::StatusReason, Expr::value(reason))
        .col_expr(Column::Version, Expr::value(expected_version + 1))
        .col_expr(Column::UpdatedAt, Expr::value(now));
    update = without_lease(update);
    if new_status != ConnectionStatus::Active {
        // Nothing to renew until the user connects again.
        update = update.col_expr(Column::RefreshDueAt, Expr::value(Option::<i64>::None));
    }
    if new_status == ConnectionStatus::Revoked {
        update = update
            .col_expr(Column::AccessToken, Expr::value(Option::<String>::None))
            .col_expr(Column::RefreshToken, Expr::value(Option::<String>::None))
            .col_expr(
                Column::AccessTokenExpiresAt,
                Expr::value(Option::<i64>::None),
            );
    }
    let result = update
        .filter(Column::Id.eq(id.to_string()))
        .filter(Column::Version.eq(expected_version))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Clears the refresh lease and attempt columns: every token or status write
/// ends any refresh in progress and settles any interrupted one.
fn without_lease(update: UpdateMany<Entity>) -> UpdateMany<Entity> {
    without_holder(update).col_expr(
        Column::RefreshInterruptedAt,
        Expr::value(Option::<i64>::None),
    )
}

/// Clears the lease holder and its attempt, keeping a remembered interruption.
fn without_holder(update: UpdateMany<Entity>) -> UpdateMany<Entity> {
    update
        .col_expr(
            Column::RefreshLeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(Column::RefreshLeaseUntil, Expr::value(Option::<i64>::None))
        .col_expr(Column::RefreshStartedAt, Expr::value(Option::<i64>::None))
        .col_expr(Column::RefreshSentAt, Expr::value(Option::<i64>::None))
}

/// A lease to take.
pub(crate) struct LeaseClaim<'a> {
    /// The row's version when read.
    pub(crate) version: i64,
    /// This process.
    pub(crate) owner: &'a str,
    /// A holder known dead, whose lease may be taken before it lapses.
    pub(crate) dead_holder: Option<&'a str>,
    /// Unix seconds.
    pub(crate) now: i64,
    /// When the lease lapses unless renewed.
    pub(crate) until: i64,
    /// An interrupted earlier attempt, to remember until tokens are stored.
    pub(crate) interrupted_at: Option<i64>,
}

/// Takes the refresh lease of a row still at `version` whose lease is free,
/// lapsed or held by a dead holder; returns whether this process now holds
/// it. The row's version is not bumped: waiters on other replicas watch the
/// version for the result.
pub(crate) async fn acquire_lease(
    db: &DatabaseConnection,
    id: ConnectionId,
    claim: LeaseClaim<'_>,
) -> DbResult<bool> {
    let mut free = Condition::any()
        .add(Column::RefreshLeaseUntil.is_null())
        .add(Column::RefreshLeaseUntil.lte(claim.now));
    if let Some(dead) = claim.dead_holder {
        free = free.add(Column::RefreshLeaseOwner.eq(dead));
    }
    let _gate = super::write_gate(db).await;
    let result = Entity::update_many()
        .col_expr(Column::RefreshLeaseOwner, Expr::value(claim.owner))
        .col_expr(Column::RefreshLeaseUntil, Expr::value(claim.until))
        .col_expr(Column::RefreshStartedAt, Expr::value(claim.now))
        .col_expr(Column::RefreshSentAt, Expr::value(Option::<i64>::None))
        .col_expr(
            Column::RefreshInterruptedAt,
            Expr::value(claim.interrupted_at),
        )
        .filter(Column::Id.eq(id.to_string()))
        .filter(Column::Version.eq(claim.version))
        .filter(free)
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Records that the holder's request is going to the provider now.
pub(crate) async fn mark_sent(
    db: &DatabaseConnection,
    id: ConnectionId,
    owner: &str,
    now: i64,
) -> DbResult<()> {
    let _gate = super::write_gate(db).await;
    Entity::update_many()
        .col_expr(Column::RefreshSentAt, Expr::value(now))
        .filter(Column::Id.eq(id.to_string()))
        .filter(Column::RefreshLeaseOwner.eq(owner))
        .exec(db)
        .await?;
    Ok(())
}

/// Extends this holder's lease to `until`; returns whether it still held it.
pub(crate) async fn renew_lease(
    db: &DatabaseConnection,
    id: ConnectionId,
    owner: &str,
    until: i64,
) -> DbResult<bool> {
    let _gate = super::write_gate(db).await;
    let result = Entity::update_many()
        .col_expr(Column::RefreshLeaseUntil, Expr::value(until))
        .filter(Column::Id.eq(id.to_string()))
        .filter(Column::RefreshLeaseOwner.eq(owner))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Gives the lease back after a refresh that changed nothing (provider
/// unavailable), so the next caller need not wait for it to lapse. A
/// remembered interruption stays.
pub(crate) async fn release_lease(
    db: &DatabaseConnection,
    id: ConnectionId,
    owner: &str,
) -> DbResult<()> {
    let _gate = super::write_gate(db).await;
    without_holder(Entity::update_many())
        .filter(Column::Id.eq(id.to_string()))
        .filter(Column::RefreshLeaseOwner.eq(owner))
        .exec(db)
        .await?;
    Ok(())
}

/// Lapses every lease at once, keeping their holders' traces: in the
/// embedded SQLite mode one process owns the database, so at its start every
/// lease found belongs to a dead process. Returns how many.
pub(crate) async fn lapse_all_leases(db: &DatabaseConnection) -> DbResult<u64> {
    let _gate = super::write_gate(db).await;
    Ok(Entity::update_many()
        .col_expr(Column::RefreshLeaseUntil, Expr::value(0i64))
        .filter(Column::RefreshLeaseOwner.is_not_null())
        .exec(db)
        .await?
        .rows_affected)
}

/// Whether any connection holds sealed tokens (used to refuse generating a
/// new key over data sealed under a lost one).
pub(crate) async fn any_sealed(db: &DatabaseConnection) -> DbResult<bool> {
    Ok(Entity::find()
        .filter(Column::AccessToken.is_not_null())
        .one(db)
        .await?
        .is_some())
}

/// How many connections have each status.
pub(crate) async fn count_by_status(
    db: &DatabaseConnection,
) -> DbResult<Vec<(ConnectionStatus, u64)>> {
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
        .map(|(s, n)| (ConnectionStatus::from_stored(&s), n.max(0) as u64))
        .collect())
}
