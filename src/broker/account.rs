//! Storing the tokens of a finished flow for the account they belong to:
//! learn the provider's account id, then update that account's connection of
//! this caller and subject, or create it.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use serde_json::Value;

use super::{
    provider_client::ProviderClient, schedule::Schedule, status, tokens::TokenService, vault::Vault,
};
use crate::{
    clock::SharedClock,
    domain::{
        Caller, Connection, ConnectionId, ConnectionStatus, Labels, RedirectUri, Scopes, Subject,
    },
    error::{Error, Result, Step},
    flow::{ProviderFailure, TokenSet},
    providers::ProviderSetting,
    store::connections,
};

/// Links provider accounts to connections.
pub(crate) struct Accounts {
    pub(crate) db: DatabaseConnection,
    pub(crate) vault: Arc<Vault>,
    pub(crate) client: Arc<ProviderClient>,
    pub(crate) tokens: Arc<TokenService>,
    pub(crate) clock: SharedClock,
    pub(crate) schedule: Schedule,
}

/// Who the tokens are for.
pub(crate) struct Owner<'a> {
    /// The calling service.
    pub(crate) caller: &'a Caller,
    /// Its end user.
    pub(crate) subject: &'a Subject,
    /// The redirect URI of the flow.
    pub(crate) redirect_uri: &'a RedirectUri,
    /// Scopes requested (used when the provider does not say what it granted).
    pub(crate) requested_scopes: &'a Scopes,
    /// Labels for the connection; empty keeps an existing one's.
    pub(crate) labels: &'a Labels,
    /// The connection to reconnect in place, when the flow was begun for one.
    pub(crate) reconnect: Option<ConnectionId>,
}

impl Accounts {
    /// Stores `tokens` for the provider account they belong to: `account`
    /// when a verified id_token named it, else the user endpoint's answer.
    pub(crate) async fn store(
        &self,
        provider: &ProviderSetting,
        owner: Owner<'_>,
        tokens: TokenSet,
        account: Option<String>,
    ) -> Result<Connection> {
        let provider_user_id = match (account, &provider.profile.userinfo_url) {
            // Asserted by the issuer in a verified id_token.
            (Some(account), _) => account,
            (None, Some(url)) => {
                let profile = self
                    .client
                    .profile_with_retries(provider, url, &tokens.access_token)
                    .await
                    .map_err(|f| Error::provider(&provider.id, Step::UserInfo, f))?;
                account_id(&profile, &provider.profile.user_id_field).ok_or_else(|| {
                    Error::provider(
                        &provider.id,
                        Step::UserInfo,
                        ProviderFailure::Malformed {
                            http_status: None,
                            reason: format!(
                                "user info has no {:?} field",
                                provider.profile.user_id_field
                            ),
                        },
                    )
                })?
            }
            (None, None) => String::new(),
        };
        let scopes = tokens
            .scope
            .as_deref()
            .map(Scopes::from_stored)
            .unwrap_or_else(|| owner.requested_scopes.clone());
        let now = self.clock.now();
        let lifetime = provider.profile.default_token_lifetime_secs;
        let labels = (!owner.labels.is_empty()).then_some(owner.labels);
        if let Some(target) = owner.reconnect {
            return self
                .reconnect(provider, &owner, target, &provider_user_id, tokens, &scopes)
                .await;
        }

        // Two attempts: a concurrent first connect of the same account may win
        // the insert, and then this one becomes an update.
        for _ in 0..2 {
            if let Some((existing, version)) = connections::find_account(
                &self.db,
                owner.caller,
                &provider.id,
                owner.subject,
                &provider_user_id,
            )
            .await?
            {
                let mut write = self
                    .vault
                    .seal_tokens(existing.id, &tokens, None, lifetime, now);
                self.schedule.stamp(provider, now, &mut write);
                if connections::write_tokens(
                    &self.db,
                    existing.id,
                    version,
                    write,
                    connections::AlsoWrite {
                        scopes: Some(&scopes),
                        redirect_uri: Some(owner.redirect_uri),
                        labels,
                    },
                    now,
                )
                .await?
                {
                    self.tokens.forget(existing.id);
                    if existing.status != ConnectionStatus::Active {
                        status::log_change(&existing, ConnectionStatus::Active, "re-authorized");
                    }
                    return connections::find(&self.db, owner.caller, existing.id)
                        .await?
                        .ok_or(Error::ConnectionNotFound { id: existing.id });
                }
                continue;
            }
            let connection = Connection {
                id: ConnectionId::generate(),
                caller: owner.caller.clone(),
                provider: provider.id.clone(),
                subject: owner.subject.clone(),
                provider_user_id: provider_user_id.clone(),
                scopes: scopes.clone(),
                status: ConnectionStatus::Active,
                status_reason: None,
                redirect_uri: owner.redirect_uri.clone(),
                access_token_expires_at: None,
                labels: owner.labels.clone(),
                created_at: now,
                updated_at: now,
            };
            let mut write = self
                .vault
                .seal_tokens(connection.id, &tokens, None, lifetime, now);
            self.schedule.stamp(provider, now, &mut write);
            let expires_at = write.expires_at;
            match connections::insert(&self.db, &connection, write).await {
                Ok(()) => {
                    tracing::info!(connection_id = %connection.id, provider = %connection.provider, "connection created");
                    return Ok(Connection {
                        access_token_expires_at: Some(expires_at),
                        ..connection
                    });
                }
                Err(e)
                    if matches!(
                        e.sql_err(),
                        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict("the connection changed concurrently"))
    }
}

impl Accounts {
    /// Stores `tokens` in the connection `target` the flow was begun for:
    /// same id, new tokens; refused without any change when the provider
    /// names another account than the connection's.
    async fn reconnect(
        &self,
        provider: &ProviderSetting,
        owner: &Owner<'_>,
        target: ConnectionId,
        provider_user_id: &str,
        tokens: TokenSet,
        scopes: &Scopes,
    ) -> Result<Connection> {
        let lifetime = provider.profile.default_token_lifetime_secs;
        for _ in 0..2 {
            let (existing, version) = connections::find_versioned(&self.db, owner.caller, target)
                .await?
                .ok_or(Error::ConnectionNotFound { id: target })?;
            if existing.status == ConnectionStatus::Revoked {
                return Err(Error::Revoked {
                    id: target,
                    provider: existing.provider,
                });
            }
            if existing.provider_user_id != provider_user_id {
                tracing::warn!(connection_id = %target, provider = %provider.id, "reconnect refused: the provider named another account");
                return Err(Error::AccountMismatch { id: target });
            }
            let now = self.clock.now();
            let mut write = self.vault.seal_tokens(target, &tokens, None, lifetime, now);
            self.schedule.stamp(provider, now, &mut write);
            let also = connections::AlsoWrite {
                scopes: Some(scopes),
                redirect_uri: Some(owner.redirect_uri),
                labels: (!owner.labels.is_empty()).then_some(owner.labels),
            };
            if connections::write_tokens(&self.db, target, version, write, also, now).await? {
                self.tokens.forget(target);
                status::log_change(&existing, ConnectionStatus::Active, "reconnected in place");
                return connections::find(&self.db, owner.caller, target)
                    .await?
                    .ok_or(Error::ConnectionNotFound { id: target });
            }
        }
        Err(Error::Conflict("the connection changed concurrently"))
    }
}

/// The account id field of a profile, whether the provider sends a string or a number.
fn account_id(profile: &serde_json::Map<String, Value>, field: &str) -> Option<String> {
    match profile.get(field)? {
        Value::String(s) if !s.is_empty() => Some(s.chars().take(256).collect()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_from_strings_and_numbers() {
        let Value::Object(p) = serde_json::json!({"id": "u1", "n": 42, "e": "", "o": {}}) else {
            panic!("object")
        };
        assert_eq!(account_id(&p, "id").as_deref(), Some("u1"));
        assert_eq!(account_id(&p, "n").as_deref(), Some("42"));
        assert_eq!(account_id(&p, "e"), None);
        assert_eq!(account_id(&p, "o"), None);
        assert_eq!(account_id(&p, "missing"), None);
    }
}
