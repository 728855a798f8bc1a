//! Shared steps of every flow that ends in stored tokens: calling the token
//! endpoint, learning the provider's account id, and upserting the connection.

use serde_json::Value;

use super::{Broker, Caller, retry, sealing};
use crate::{
    config::ProviderSetting,
    error::{Error, Result},
    flow::{self, OutboundRequest, ProviderFailure, TokenSet, expiry},
    secret::Secret,
    store::{
        self,
        connections::{self, ConnectionRow, TokenWrite, status},
    },
};

impl Broker {
    /// Sends a token request and parses the answer.
    /// Sends a token request carrying `grant_secret` (code or password) and
    /// maps failures, scrubbing that secret from any provider text.
    pub(super) async fn exchange(
        &self,
        provider: &str,
        what: &str,
        request: &OutboundRequest,
        grant_secret: &Secret,
    ) -> Result<TokenSet> {
        self.exchange_with_retries(provider, request)
            .await
            .map_err(|failure| {
                Error::provider(provider, what, failure.scrub(grant_secret.expose()))
            })
    }

    /// Sends a token request, retrying only failures after which the
    /// provider certainly did not process it (unreachable, 429, 503): a
    /// retried request must never spend a code or a refresh token twice.
    pub(super) async fn exchange_with_retries(
        &self,
        provider: &str,
        request: &OutboundRequest,
    ) -> Result<TokenSet, ProviderFailure> {
        let retry_safe = |f: &ProviderFailure| {
            matches!(
                f,
                ProviderFailure::Unavailable {
                    retry_safe: true,
                    ..
                }
            )
        };
        retry::with_retries("token request", retry_safe, || {
            self.try_exchange(provider, request)
        })
        .await
    }

    /// GETs the user endpoint, retrying failures: a GET has no side effect,
    /// and giving up here would throw away tokens just obtained.
    pub(super) async fn fetch_profile_with_retries(
        &self,
        provider: &str,
        url: &str,
        access_token: &Secret,
    ) -> Result<serde_json::Map<String, Value>, ProviderFailure> {
        let transient = |f: &ProviderFailure| {
            matches!(
                f,
                ProviderFailure::Unavailable { .. } | ProviderFailure::Malformed { .. }
            )
        };
        retry::with_retries("user endpoint", transient, || {
            self.fetch_profile(provider, url, access_token)
        })
        .await
    }

    pub(super) async fn try_exchange(
        &self,
        provider: &str,
        request: &OutboundRequest,
    ) -> Result<TokenSet, ProviderFailure> {
        let response = self.inner.http.send(provider, "token", request).await?;
        flow::parse_token_response(
            response.status,
            &response.content_type,
            &response.body,
            response.retry_after,
        )
    }

    /// GETs a provider JSON object with the user's bearer token.
    pub(super) async fn fetch_profile(
        &self,
        provider: &str,
        url: &str,
        access_token: &Secret,
    ) -> Result<serde_json::Map<String, Value>, ProviderFailure> {
        let request = OutboundRequest {
            method: "GET",
            url: url.to_owned(),
            headers: vec![
                ("accept", Secret::new("application/json")),
                (
                    "authorization",
                    Secret::new(format!("Bearer {}", access_token.expose())),
                ),
            ],
            body: None,
        };
        let response = self.inner.http.send(provider, "userinfo", &request).await?;
        json_object(
            response.status,
            &response.content_type,
            &response.body,
            response.retry_after,
        )
    }

    /// Stores tokens for the account they belong to: updates the existing
    /// connection of this caller, subject and provider account, or creates one.
    pub(super) async fn connect_account(
        &self,
        caller: &Caller,
        provider: &ProviderSetting,
        subject: &str,
        redirect_uri: &str,
        requested_scopes: &str,
        tokens: TokenSet,
    ) -> Result<ConnectionRow> {
        let provider_user_id = match &provider.profile.userinfo_url {
            Some(url) => {
                let profile = self
                    .fetch_profile_with_retries(&provider.id, url, &tokens.access_token)
                    .await
                    .map_err(|f| Error::provider(&provider.id, "user info request", f))?;
                account_id(&profile, &provider.profile.user_id_field).ok_or_else(|| {
                    Error::Unavailable(format!(
                        "provider {} user info has no {:?} field",
                        provider.id, provider.profile.user_id_field
                    ))
                })?
            }
            None => String::new(),
        };
        let scopes = tokens
            .scope
            .clone()
            .unwrap_or_else(|| requested_scopes.to_owned());
        let now = store::now();
        let db = &self.inner.db;

        // Two attempts: a concurrent first connect of the same account may win the
        // insert, and then this one becomes an update.
        for _ in 0..2 {
            if let Some(existing) =
                connections::find_account(db, &caller.0, &provider.id, subject, &provider_user_id)
                    .await?
            {
                let write = self.seal_tokens(
                    &existing.id,
                    &tokens,
                    None,
                    provider.profile.default_token_lifetime_secs,
                    now,
                );
                if connections::write_tokens(
                    db,
                    &existing.id,
                    existing.version,
                    write,
                    Some(&scopes),
                    Some(redirect_uri),
                    now,
                )
                .await?
                {
                    self.inner.cache.remove(&existing.id);
                    if existing.status != status::ACTIVE {
                        log_status_change(&existing, status::ACTIVE, "re-authorized");
                    }
                    return connections::find(db, &caller.0, &existing.id)
                        .await?
                        .ok_or_else(|| Error::NotFound("connection vanished".into()));
                }
                continue;
            }
            let id = uuid::Uuid::now_v7().to_string();
            let write = self.seal_tokens(
                &id,
                &tokens,
                None,
                provider.profile.default_token_lifetime_secs,
                now,
            );
            let row = ConnectionRow {
                id,
                caller: caller.0.clone(),
                provider: provider.id.clone(),
                subject: subject.to_owned(),
                provider_user_id: provider_user_id.clone(),
                scopes: scopes.clone(),
                status: status::ACTIVE.into(),
                status_reason: None,
                redirect_uri: redirect_uri.to_owned(),
                token_type: write.token_type,
                access_token: Some(write.access_token),
                refresh_token: write.refresh_token,
                access_token_expires_at: Some(write.expires_at),
                key_id: write.key_id,
                version: 1,
                refresh_lease_owner: None,
                refresh_lease_until: None,
                refresh_started_at: None,
                created_at: now,
                updated_at: now,
            };
            match connections::insert(db, row).await {
                Ok(row) => {
                    tracing::info!(connection_id = %row.id, provider = %row.provider, "connection created");
                    return Ok(row);
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
        Err(Error::Aborted(
            "the connection changed concurrently; retry".into(),
        ))
    }

    /// Seals a token answer for row `id`. `previous_refresh` (sealed) is kept
    /// when the answer carries no new refresh token.
    pub(super) fn seal_tokens(
        &self,
        id: &str,
        tokens: &TokenSet,
        previous_refresh: Option<String>,
        default_lifetime_secs: u64,
        now: i64,
    ) -> TokenWrite {
        let key = &self.inner.key;
        TokenWrite {
            access_token: key.seal(
                tokens.access_token.expose(),
                sealing::connection_slot(id, sealing::ACCESS_TOKEN),
            ),
            refresh_token: tokens
                .refresh_token
                .as_ref()
                .map(|rt| {
                    key.seal(
                        rt.expose(),
                        sealing::connection_slot(id, sealing::REFRESH_TOKEN),
                    )
                })
                .or(previous_refresh),
            token_type: tokens.token_type.clone(),
            expires_at: expiry::expires_at(now, tokens.expires_in, default_lifetime_secs),
            key_id: key.id().to_owned(),
        }
    }
}

/// Logs a connection status change in one shape, for alerting.
pub(super) fn log_status_change(row: &ConnectionRow, to: &str, reason: &str) {
    crate::telemetry::metrics::metrics()
        .status_changes
        .add(1, &[opentelemetry::KeyValue::new("to", to.to_owned())]);
    tracing::warn!(
        connection_id = %row.id,
        provider = %row.provider,
        from = %row.status,
        to,
        reason,
        "connection status changed"
    );
}

/// The account id field of a profile, whether the provider sends a string or a number.
fn account_id(profile: &serde_json::Map<String, Value>, field: &str) -> Option<String> {
    match profile.get(field)? {
        Value::String(s) if !s.is_empty() => Some(s.chars().take(256).collect()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Interprets a provider answer that must be a JSON object.
pub(super) fn json_object(
    status: u16,
    content_type: &str,
    body: &[u8],
    retry_after: Option<u64>,
) -> Result<serde_json::Map<String, Value>, ProviderFailure> {
    if status == 429 || status >= 500 {
        return Err(ProviderFailure::Unavailable {
            reason: format!("answered HTTP {status}"),
            retry_after,
            retry_safe: flow::token_response::status_is_retry_safe(status),
        });
    }
    let parsed = serde_json::from_slice::<Value>(body).ok();
    if !(200..300).contains(&status) {
        let message = parsed
            .as_ref()
            .and_then(|v| {
                v.get("message")
                    .or_else(|| v.get("error_description"))
                    .or_else(|| v.get("error"))
            })
            .and_then(Value::as_str)
            .map(flow::token_response::shorten);
        return Err(ProviderFailure::Rejected {
            error: flow::OAuthError::Other(format!("http_{status}")),
            description: message,
        });
    }
    if content_type.starts_with("text/html") {
        return Err(ProviderFailure::Malformed {
            reason: "answered with an HTML page".into(),
        });
    }
    match parsed {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(ProviderFailure::Malformed {
            reason: format!("answered HTTP {status} without a JSON object"),
        }),
    }
}
