//! Talking to providers: token requests, the user endpoint and the usage
//! endpoint over the outbound client, with the retries each call can afford,
//! answers parsed by `flow`, and grant secrets scrubbed from provider text.

use serde_json::{Map, Value};

use super::retry::with_retries;
use crate::{
    domain::{AccessToken, Credits, RedirectUri, RefreshToken, UsageLabel},
    error::{Error, Result, Step},
    flow::{
        self, Grant, OutboundRequest, ProviderFailure, TokenSet, answer::json_object,
        parse_token_response,
    },
    http::HttpClient,
    providers::ProviderSetting,
    secret::Secret,
};

/// A provider's JSON object answer, or how the call failed.
pub(crate) type JsonAnswer = Result<Map<String, Value>, ProviderFailure>;

/// The outbound side of every flow.
pub(crate) struct ProviderClient {
    pub(super) http: HttpClient,
}

impl ProviderClient {
    /// Calls providers through `http`.
    pub(crate) fn new(http: HttpClient) -> Self {
        Self { http }
    }

    /// Exchanges a code or a password for tokens, as `step`.
    pub(crate) async fn grant(
        &self,
        provider: &ProviderSetting,
        grant: &Grant<'_>,
        step: Step,
    ) -> Result<TokenSet> {
        self.token_request(provider, grant)
            .await
            .map_err(|failure| Error::provider(&provider.id, step, failure))
    }

    /// Exchanges a refresh token; the failure is returned as data, because
    /// what it means depends on the connection (see `flow::refresh`).
    pub(crate) async fn refresh(
        &self,
        provider: &ProviderSetting,
        refresh_token: &RefreshToken,
        redirect_uri: &RedirectUri,
    ) -> Result<TokenSet, ProviderFailure> {
        let grant = Grant::RefreshToken {
            refresh_token,
            redirect_uri: redirect_uri.as_str(),
        };
        self.token_request(provider, &grant).await
    }

    /// Sends a token request, retrying only failures after which the
    /// provider certainly did not process it (unreachable, 429, 503): a
    /// retried request must never spend a code or a refresh token twice.
    async fn token_request(
        &self,
        provider: &ProviderSetting,
        grant: &Grant<'_>,
    ) -> Result<TokenSet, ProviderFailure> {
        let request = flow::token_request(
            &provider.profile,
            &provider.client_id,
            &provider.client_secret,
            grant,
        );
        with_retries("token request", ProviderFailure::is_retry_safe, || async {
            let response = self
                .http
                .send(provider.id.as_str(), "token", &request)
                .await?;
            parse_token_response(
                response.status,
                &response.content_type,
                &response.body,
                response.retry_after,
            )
        })
        .await
        .map_err(|failure| failure.scrub(grant.secret()))
    }

    /// Revokes `token` at the provider's revocation endpoint (RFC 7009):
    /// `Ok` when it answered 200. Retried only where nothing was processed.
    pub(crate) async fn revoke(
        &self,
        provider: &ProviderSetting,
        url: &str,
        token: &str,
        hint: flow::revocation::Hint,
    ) -> Result<(), ProviderFailure> {
        let request = flow::revocation::revocation_request(
            &provider.profile,
            url,
            &provider.client_id,
            &provider.client_secret,
            token,
            hint,
        );
        with_retries("revocation", ProviderFailure::is_retry_safe, || async {
            let response = self
                .http
                .send(provider.id.as_str(), "revocation", &request)
                .await?;
            match flow::answer::classify_status(response.status) {
                // RFC 7009 §2.2: 200 whether or not the token was valid.
                flow::answer::StatusClass::Success => Ok(()),
                _ => flow::answer::json_object(
                    response.status,
                    &response.content_type,
                    &response.body,
                    response.retry_after,
                )
                .map(drop),
            }
        })
        .await
        .map_err(|failure| failure.scrub(token))
    }

    /// GETs the user endpoint once.
    pub(crate) async fn profile(
        &self,
        provider: &ProviderSetting,
        url: &str,
        token: &AccessToken,
    ) -> JsonAnswer {
        let request = OutboundRequest {
            method: "GET",
            url: url.to_owned(),
            headers: vec![
                ("accept", Secret::new("application/json")),
                (
                    "authorization",
                    Secret::new(format!("Bearer {}", token.secret())),
                ),
            ],
            body: None,
        };
        let response = self
            .http
            .send(provider.id.as_str(), "userinfo", &request)
            .await?;
        json_object(
            response.status,
            &response.content_type,
            &response.body,
            response.retry_after,
        )
    }

    /// GETs the user endpoint, retrying failures: a GET has no side effect,
    /// and giving up would throw away tokens just obtained.
    pub(crate) async fn profile_with_retries(
        &self,
        provider: &ProviderSetting,
        url: &str,
        token: &AccessToken,
    ) -> JsonAnswer {
        let transient = |f: &ProviderFailure| {
            matches!(
                f,
                ProviderFailure::Unavailable { .. } | ProviderFailure::Malformed { .. }
            )
        };
        with_retries("user endpoint", transient, || {
            self.profile(provider, url, token)
        })
        .await
    }

    /// One POST to the usage endpoint, never retried here: only the ledger
    /// knows whether sending again is safe. Returns the HTTP status when the
    /// provider answered.
    pub(crate) async fn report_usage(
        &self,
        provider: &ProviderSetting,
        url: &str,
        token: &AccessToken,
        usage: &UsageLabel,
        credits: Credits,
    ) -> (Option<u16>, JsonAnswer) {
        let body = serde_json::json!({
            "client_id": provider.client_id,
            "usage": usage.as_str(),
            "credits": credits.to_json(),
        });
        let request = OutboundRequest {
            method: "POST",
            url: url.to_owned(),
            headers: vec![
                ("accept", Secret::new("application/json")),
                ("content-type", Secret::new("application/json")),
                (
                    "authorization",
                    Secret::new(format!("Bearer {}", token.secret())),
                ),
            ],
            body: Some(Secret::new(body.to_string())),
        };
        match self
            .http
            .send(provider.id.as_str(), "usage", &request)
            .await
        {
            Ok(r) => (
                Some(r.status),
                json_object(r.status, &r.content_type, &r.body, r.retry_after),
            ),
            Err(failure) => (None, Err(failure)),
        }
    }
}
