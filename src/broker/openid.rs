//! The OpenID Connect side of talking to providers: reading an issuer's
//! discovery document (at start, then in the background until it is read)
//! and checking the `id_token` of a token answer against its key set.

use std::{sync::Arc, time::Duration};

use super::{provider_client::ProviderClient, registry::Providers};
use crate::{
    flow::{OutboundRequest, ProviderFailure, TokenSet},
    oidc::{self, Discovered, Expect, IdTokenError},
    providers::ProviderSetting,
    secret::Secret,
};

/// The longest pause between two discovery attempts of an issuer that
/// could not be read.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(60);
/// How long start-up waits for the first discovery round before serving
/// (the round goes on in the background).
pub(crate) const STARTUP_WAIT: Duration = Duration::from_secs(5);

/// What an `id_token` must match besides the provider's issuer and client.
pub(crate) struct IdTokenCheck<'a> {
    /// The flow's nonce; `None` on a refresh.
    pub(crate) nonce: Option<&'a str>,
    /// The connection's account, when it has one (a refresh).
    pub(crate) subject: Option<&'a str>,
    /// Unix seconds.
    pub(crate) now: i64,
}

impl ProviderClient {
    /// GETs a JSON document of the provider (discovery, key set).
    async fn get_document(
        &self,
        provider: &ProviderSetting,
        endpoint: &'static str,
        url: &str,
    ) -> Result<(u16, Vec<u8>, Option<u64>), ProviderFailure> {
        let request = OutboundRequest {
            method: "GET",
            url: url.to_owned(),
            headers: vec![("accept", Secret::new("application/json"))],
            body: None,
        };
        let response = self
            .http
            .send(provider.id.as_str(), endpoint, &request)
            .await?;
        Ok((response.status, response.body, response.retry_after))
    }

    /// Reads the discovery document of an oidc provider.
    pub(crate) async fn discover(
        &self,
        provider: &ProviderSetting,
    ) -> Result<Discovered, ProviderFailure> {
        let Some(oidc) = provider.oidc.as_ref() else {
            return Err(ProviderFailure::Malformed {
                http_status: None,
                reason: "not an OpenID provider".into(),
            });
        };
        let (status, body, retry_after) = self
            .get_document(provider, "discovery", &oidc::discovery_url(&oidc.issuer))
            .await?;
        oidc::parse_discovery(&oidc.issuer, status, &body, retry_after)
    }

    /// For an oidc provider, verifies the `id_token` of `tokens` and returns
    /// its `sub`; `None` for other kinds, and for a refresh answer without
    /// one (OIDC Core 12.2 makes it optional there). What went wrong stays
    /// distinct: a refresh treats an unreadable key set differently from a
    /// refused token.
    pub(crate) async fn id_token_subject(
        &self,
        provider: &ProviderSetting,
        tokens: &TokenSet,
        check: IdTokenCheck<'_>,
    ) -> Result<Option<String>, IdTokenError> {
        let Some(oidc) = provider.oidc.as_ref() else {
            return Ok(None);
        };
        let Some(id_token) = tokens.id_token.as_ref() else {
            if check.nonce.is_none() {
                return Ok(None);
            }
            return Err(IdTokenError::Invalid(
                "the token answer has no id_token (OIDC Core 3.1.3.3)".into(),
            ));
        };
        let jwks_uri = oidc.jwks_uri.get().cloned().unwrap_or_default();
        let expect = Expect {
            issuer: &oidc.issuer,
            client_id: &provider.client_id,
            nonce: check.nonce,
            subject: check.subject,
            now: check.now,
        };
        let fetch = || async {
            let (status, body, retry_after) =
                self.get_document(provider, "jwks", &jwks_uri).await?;
            match crate::flow::answer::classify_status(status) {
                crate::flow::answer::StatusClass::Success => Ok(body),
                _ => Err(ProviderFailure::Unavailable {
                    http_status: Some(status),
                    reason: format!("the key set answered HTTP {status}"),
                    retry_after,
                    retry_safe: true,
                }),
            }
        };
        oidc::verify_id_token(id_token.secret(), &expect, &oidc.keys, fetch)
            .await
            .map(Some)
    }
}

/// Reads the discovery documents of oidc providers.
pub(crate) struct Discovery {
    pub(crate) providers: Arc<Providers>,
    pub(crate) client: Arc<ProviderClient>,
}

impl Discovery {
    /// One attempt for every provider not yet discovered, all at once; how
    /// many remain.
    pub(crate) async fn attempt(self: &Arc<Self>) -> usize {
        let mut attempts = tokio::task::JoinSet::new();
        for provider in self.providers.undiscovered() {
            let this = self.clone();
            attempts.spawn(async move {
                match this.client.discover(&provider).await {
                    Ok(found) => {
                        tracing::info!(provider = %provider.id, "OpenID discovery document read");
                        this.providers.set_discovered(&provider.id, &found);
                        0
                    }
                    Err(failure) => {
                        tracing::warn!(provider = %provider.id, ?failure, "OpenID discovery failed; the provider is unavailable until it succeeds");
                        1
                    }
                }
            });
        }
        attempts.join_all().await.into_iter().sum()
    }

    /// Retries until every provider is discovered, pausing 1 s, 2 s, 4 s …
    /// up to a minute between rounds.
    pub(crate) async fn until_done(self: Arc<Self>) {
        let mut pause = Duration::from_secs(1);
        while !self.providers.undiscovered().is_empty() {
            tokio::time::sleep(pause).await;
            if self.attempt().await == 0 {
                return;
            }
            pause = (pause * 2).min(MAX_RETRY_PAUSE);
        }
    }
}
