//! RecordUsage: report pay-per-use credits to the provider exactly once per
//! idempotency key. The ledger row is claimed before the provider is called,
//! so concurrent duplicates wait for the first attempt instead of calling again.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tracing::Instrument as _;

use super::{Broker, Caller, connect::json_object};
use crate::{
    config::ProviderSetting,
    error::{Error, Result},
    flow::{OutboundRequest, ProviderFailure, state::hex},
    secret::Secret,
    store::{
        self,
        usage::{self, Settlement, UsageRecord, status},
    },
};

/// How long a duplicate waits for the first attempt with its key.
const DUPLICATE_WAIT: Duration = Duration::from_secs(30);

/// A validated RecordUsage request.
#[derive(Clone)]
pub struct UsageRequest {
    /// Connection charged.
    pub connection_id: String,
    /// Usage reason.
    pub usage: String,
    /// Credits, non-negative.
    pub credits: f64,
    /// Caller-chosen idempotency key.
    pub idempotency_key: String,
}

/// A confirmed usage.
pub struct UsageOutcome {
    /// Ledger id.
    pub usage_id: String,
    /// The provider's confirmation.
    pub provider_response: Map<String, Value>,
    /// Whether this is an earlier call's stored result.
    pub replayed: bool,
}

impl UsageRequest {
    fn hash(&self) -> String {
        let text = format!("{}\n{}\n{}", self.connection_id, self.usage, self.credits);
        hex(&Sha256::digest(text.as_bytes()))
    }
}

impl Broker {
    /// Records usage once per key; see the module comment.
    pub async fn record_usage(&self, caller: &Caller, req: UsageRequest) -> Result<UsageOutcome> {
        let db = &self.inner.db;
        let hash = req.hash();
        let deadline = Instant::now() + DUPLICATE_WAIT;
        loop {
            let Some(record) = usage::find(db, &caller.0, &req.idempotency_key).await? else {
                let record = self.new_record(caller, &req, &hash).await?;
                let id = record.id.clone();
                if usage::claim_new(db, record).await? {
                    return self.attempt_detached(caller, &req, &id).await;
                }
                continue;
            };
            if record.request_hash != hash {
                return Err(Error::AlreadyExists(
                    "idempotency_key: already used with a different connection, usage or credits"
                        .into(),
                ));
            }
            match record.status.as_str() {
                status::SUCCEEDED => return replay(&record),
                status::REJECTED => return Err(rejection(&record)),
                status::UNKNOWN => {
                    return Err(Error::Aborted(format!(
                        "usage {}: an earlier attempt timed out and the provider may have recorded it; \
                         check with the provider before reporting it under a new key",
                        record.id
                    )));
                }
                status::RETRYABLE if usage::claim_retry(db, &record.id, store::now()).await? => {
                    return self.attempt_detached(caller, &req, &record.id).await;
                }
                // A pending claim older than any attempt can take was left by
                // a process that died mid-call: its outcome is unknown.
                status::PENDING if record.updated_at < store::now() - self.stale_pending_secs() => {
                    usage::mark_unknown(db, &record.id, store::now()).await?;
                    continue;
                }
                _ if Instant::now() >= deadline => {
                    return Err(Error::Aborted(format!(
                        "usage {}: an attempt with this key is still in progress",
                        record.id
                    )));
                }
                _ => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
    }

    /// Checks that the connection can report usage and builds its pending record.
    async fn new_record(
        &self,
        caller: &Caller,
        req: &UsageRequest,
        hash: &str,
    ) -> Result<UsageRecord> {
        let row = self.usable_connection(caller, &req.connection_id).await?;
        let provider = self.provider_of_row(&row.provider)?;
        if provider.profile.usage_url.is_none() {
            return Err(Error::FailedPrecondition(format!(
                "provider {:?} has no usage endpoint",
                provider.id
            )));
        }
        if provider.profile.usage_whole_credits && req.credits.fract() != 0.0 {
            return Err(Error::invalid(
                "credits",
                format!("provider {:?} takes whole credits only", provider.id),
            ));
        }
        let now = store::now();
        Ok(UsageRecord {
            id: uuid::Uuid::now_v7().to_string(),
            caller: caller.0.clone(),
            connection_id: req.connection_id.clone(),
            idempotency_key: req.idempotency_key.clone(),
            request_hash: hash.to_owned(),
            usage: req.usage.clone(),
            credits: req.credits,
            status: status::PENDING.into(),
            attempts: 1,
            provider_status: None,
            provider_response: None,
            error: None,
            created_at: now,
            updated_at: now,
        })
    }

    /// Runs [`Self::attempt`] as its own task, so a caller that goes away
    /// mid-call cannot leave the claim pending after the provider answered.
    async fn attempt_detached(
        &self,
        caller: &Caller,
        req: &UsageRequest,
        id: &str,
    ) -> Result<UsageOutcome> {
        let (broker, caller, req, id) = (self.clone(), caller.clone(), req.clone(), id.to_owned());
        tokio::spawn(async move { broker.attempt(&caller, &req, &id).await }.in_current_span())
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("usage task failed: {e}")))?
    }

    /// Longer than any attempt can last (token refresh plus the usage call).
    fn stale_pending_secs(&self) -> i64 {
        // A lease wait, a refresh, a forced refresh after a 401 and two usage
        // calls, with room to spare.
        4 * self.inner.lease.as_secs() as i64
    }

    /// Calls the provider for a claimed record and settles it. A 401 gets one
    /// forced token refresh and one more call: the provider recorded nothing.
    async fn attempt(&self, caller: &Caller, req: &UsageRequest, id: &str) -> Result<UsageOutcome> {
        let found = match self.connection(caller, &req.connection_id).await {
            Ok(row) => self.provider_of_row(&row.provider).map(|p| (row, p)),
            Err(e) => Err(e),
        };
        let (row, provider_setting) = match found {
            Ok(found) => found,
            Err(e) => {
                // Nothing was sent: the key may be tried again.
                self.settle(id, status::RETRYABLE, None, None, Some(&e.to_string()))
                    .await?;
                return Err(e);
            }
        };
        let provider = &row.provider;
        let mut force_refresh = false;
        loop {
            let (status_code, result) = match self
                .call_usage(caller, req, &provider_setting, force_refresh)
                .await
            {
                Ok(answer) => answer,
                Err(e) => {
                    // Nothing reached the provider: the key may be tried again.
                    self.settle(id, status::RETRYABLE, None, None, Some(&e.to_string()))
                        .await?;
                    return Err(e);
                }
            };
            return match result {
                Ok(response) => {
                    let text = Value::Object(response.clone()).to_string();
                    self.settle(id, status::SUCCEEDED, status_code, Some(&text), None)
                        .await?;
                    tracing::info!(usage_id = id, provider = %provider, "usage recorded");
                    Ok(UsageOutcome {
                        usage_id: id.to_owned(),
                        provider_response: response,
                        replayed: false,
                    })
                }
                Err(ProviderFailure::Rejected { error, .. })
                    if error.as_str() == "http_401" && !force_refresh =>
                {
                    force_refresh = true;
                    continue;
                }
                Err(ProviderFailure::Rejected { error, description }) => {
                    let message = description.unwrap_or_else(|| error.as_str().to_owned());
                    let e = Error::FailedPrecondition(format!(
                        "provider {provider} rejected the usage: {message}"
                    ));
                    self.settle(
                        id,
                        status::REJECTED,
                        status_code,
                        None,
                        Some(&e.to_string()),
                    )
                    .await?;
                    Err(e)
                }
                Err(failure) => {
                    let settled = if certainly_not_recorded(&failure) {
                        status::RETRYABLE
                    } else {
                        status::UNKNOWN
                    };
                    let e = Error::provider(provider, "usage report", failure);
                    self.settle(id, settled, status_code, None, Some(&e.to_string()))
                        .await?;
                    Err(e)
                }
            };
        }
    }

    /// One POST to the usage endpoint. `Err` only when no request was sent.
    async fn call_usage(
        &self,
        caller: &Caller,
        req: &UsageRequest,
        provider: &ProviderSetting,
        force_refresh: bool,
    ) -> Result<(Option<u16>, Result<Map<String, Value>, ProviderFailure>)> {
        let token = self
            .access_token(caller, &req.connection_id, 30, force_refresh)
            .await?;
        let url = provider.profile.usage_url.clone().ok_or_else(|| {
            Error::FailedPrecondition(format!("provider {:?} has no usage endpoint", provider.id))
        })?;
        let body = serde_json::json!({
            "client_id": provider.client_id,
            "usage": req.usage,
            "credits": credits_json(req.credits),
        });
        let request = OutboundRequest {
            method: "POST",
            url,
            headers: vec![
                ("accept", Secret::new("application/json")),
                ("content-type", Secret::new("application/json")),
                (
                    "authorization",
                    Secret::new(format!("Bearer {}", token.token.expose())),
                ),
            ],
            body: Some(Secret::new(body.to_string())),
        };
        Ok(
            match self.inner.http.send(&provider.id, "usage", &request).await {
                Ok(r) => (
                    Some(r.status),
                    json_object(r.status, &r.content_type, &r.body, r.retry_after),
                ),
                Err(failure) => (None, Err(failure)),
            },
        )
    }

    async fn settle(
        &self,
        id: &str,
        status: &'static str,
        provider_status: Option<u16>,
        provider_response: Option<&str>,
        error: Option<&str>,
    ) -> Result<()> {
        let settlement = Settlement {
            status,
            provider_status,
            provider_response,
            error,
        };
        Ok(usage::settle(&self.inner.db, id, settlement, store::now()).await?)
    }
}

/// Whole credits go out as JSON integers, as in the provider's examples.
fn credits_json(credits: f64) -> Value {
    if credits.fract() == 0.0 && credits.abs() < 9.0e15 {
        Value::from(credits as i64)
    } else {
        Value::from(credits)
    }
}

/// Failures after which the provider cannot have recorded the usage: it was
/// unreachable, or said so (429, 503).
fn certainly_not_recorded(failure: &ProviderFailure) -> bool {
    matches!(
        failure,
        ProviderFailure::Unavailable {
            retry_safe: true,
            ..
        }
    )
}

fn replay(record: &UsageRecord) -> Result<UsageOutcome> {
    let provider_response = record
        .provider_response
        .as_deref()
        .and_then(|text| serde_json::from_str::<Map<String, Value>>(text).ok())
        .unwrap_or_default();
    Ok(UsageOutcome {
        usage_id: record.id.clone(),
        provider_response,
        replayed: true,
    })
}

fn rejection(record: &UsageRecord) -> Error {
    Error::FailedPrecondition(
        record
            .error
            .clone()
            .unwrap_or_else(|| "the provider rejected this usage".into()),
    )
}
