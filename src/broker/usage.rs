//! RecordUsage: report pay-per-use credits to the provider exactly once per
//! idempotency key. The ledger row is claimed before the provider is called,
//! so concurrent duplicates wait for the first attempt instead of calling
//! again; `flow::usage` decides what rows and answers mean.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use sea_orm::DatabaseConnection;
use serde_json::Value;
use tracing::Instrument as _;

use super::{
    heartbeat,
    liveness::Liveness,
    provider_client::ProviderClient,
    registry::Providers,
    status,
    tokens::TokenService,
    usage_request::{UsageOutcome, UsageRequest, replay},
};
use crate::{
    clock::SharedClock,
    domain::{Caller, Denied, ProviderId, UsageStatus},
    error::{Error, Result, Step},
    flow::usage::{LedgerSnapshot, OnExisting, UsageVerdict, classify_usage_answer, on_existing},
    providers::ProviderSetting,
    store::{
        budget::{self, Budgeted},
        connections,
        usage::{self, Claim, NewUsage, Settlement, UsageEntry},
    },
};

/// The window of `max_credits_per_day`.
const DAY_SECS: i64 = 86_400;
/// How often a duplicate looks at the attempt with its key.
const DUPLICATE_POLL: Duration = Duration::from_millis(25);
/// How long a GetAccessToken made for a usage call needs the token to live.
// Enough for one provider call; a 401 still gets one forced refresh and a
// retry. Not more: a need beyond what a short-lived provider's token gives
// would renew the connection on every call.
const TOKEN_MIN_VALID_SECS: i64 = 10;
/// How long a report waits for a refresh of its token (one a crashed
/// replica left can hold it for a lease) before using the stored token if
/// it is still valid: a 401 still gets a forced refresh and one retry.
const TOKEN_WAIT: Duration = Duration::from_secs(2);

/// The usage ledger.
pub(crate) struct UsageLedger {
    pub(crate) db: DatabaseConnection,
    pub(crate) tokens: Arc<TokenService>,
    pub(crate) client: Arc<ProviderClient>,
    pub(crate) providers: Arc<Providers>,
    pub(crate) clock: SharedClock,
    /// Longer than any attempt can last: a pending claim without a holder
    /// recorded (from before claims had holders) older than this was left by
    /// a process that died mid-call.
    pub(crate) stale_pending_secs: i64,
    /// This process's name on the claims it holds.
    pub(crate) owner: String,
    /// Tells a dead claim holder from a slow one.
    pub(crate) liveness: Arc<Liveness>,
    /// How long a claim lasts unless its holder renews it.
    pub(crate) claim_lease: Duration,
    /// How long a duplicate waits for the attempt with its key.
    pub(crate) max_wait: Duration,
}

impl UsageLedger {
    /// Records usage once per key; see the module comment. The ledger id,
    /// once known, is left in `entry`.
    pub(super) async fn record(
        self: &Arc<Self>,
        caller: &Caller,
        req: UsageRequest,
        entry_id: &Mutex<Option<String>>,
    ) -> Result<UsageOutcome> {
        let remember = |id: &str| {
            *entry_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.to_owned());
        };
        let hash = req.hash();
        let deadline_ms = self.clock.now_millis() + self.max_wait.as_millis() as i64;
        loop {
            let Some(entry) = usage::find(&self.db, caller, req.idempotency_key.as_str()).await?
            else {
                let provider = self.check_reportable(caller, &req).await?;
                let id = uuid::Uuid::now_v7().to_string();
                let claim = NewUsage {
                    id: &id,
                    caller,
                    connection_id: req.connection_id.to_string(),
                    idempotency_key: req.idempotency_key.as_str(),
                    request_hash: &hash,
                    usage: req.usage.as_str(),
                    credits: req.credits.value(),
                    claim: self.claim(),
                };
                let claimed = match req.policy.max_credits_per_day {
                    None => usage::claim_new(&self.db, claim).await?,
                    Some(max) => {
                        let since = self.clock.now() - DAY_SECS;
                        match budget::claim_new_within(&self.db, claim, max, since).await? {
                            Budgeted::Claimed => true,
                            Budgeted::Exists => false,
                            Budgeted::Over { used } => {
                                let denied = req
                                    .policy
                                    .credits_per_day(used, req.credits.value())
                                    .err()
                                    .unwrap_or_else(|| Denied {
                                        rule: "max_credits_per_day",
                                        detail: format!("{used} credits used in 24 hours"),
                                    });
                                return Err(Error::denied(caller, denied));
                            }
                        }
                    }
                };
                if claimed {
                    remember(&id);
                    return self.attempt_detached(caller, &req, provider, id).await;
                }
                continue;
            };
            remember(&entry.id);
            let mut snapshot = LedgerSnapshot {
                status: entry.status,
                updated_at: entry.updated_at,
                same_request: entry.request_hash == hash,
                claim_until: entry.claim_until,
                holder_dead: false,
                sent: entry.sent_at.is_some(),
            };
            let waited_out = self.clock.now_millis() >= deadline_ms;
            let now = self.clock.now();
            let mut next = on_existing(now, snapshot, self.stale_pending_secs, waited_out);
            // Only a live claim that stands in the way is worth asking about.
            let mut dead_holder = None;
            if let (OnExisting::Wait | OnExisting::GiveUp, Some(holder), Some(until)) =
                (next, &entry.claim_owner, entry.claim_until)
                && self
                    .liveness
                    .holder_dead(holder, until, self.claim_lease.as_secs() as i64)
                    .await
            {
                dead_holder = entry.claim_owner.clone();
                snapshot.holder_dead = true;
                next = on_existing(now, snapshot, self.stale_pending_secs, waited_out);
            }
            match next {
                OnExisting::Conflict => return Err(Error::UsageKeyConflict),
                OnExisting::Replay => return Ok(replay(&entry)),
                OnExisting::Rejected => {
                    return Err(self.stored_rejection(caller, &req, entry).await);
                }
                OnExisting::OutcomeUnknown => {
                    return Err(Error::UsageOutcomeUnknown {
                        usage_id: entry.id,
                        detail: entry
                            .error
                            .unwrap_or_else(|| "no answer was recorded".into()),
                    });
                }
                OnExisting::ClaimRetry => {
                    if usage::claim_retry(&self.db, &entry.id, self.claim()).await? {
                        return self.attempt_claimed(caller, &req, entry.id).await;
                    }
                }
                OnExisting::ReclaimUnsent => {
                    let dead = dead_holder.as_deref();
                    if usage::reclaim_unsent(&self.db, &entry.id, dead, self.claim()).await? {
                        return self.attempt_claimed(caller, &req, entry.id).await;
                    }
                }
                OnExisting::MarkUnknown => {
                    usage::mark_unknown(
                        &self.db,
                        &entry.id,
                        dead_holder.as_deref(),
                        self.clock.now(),
                    )
                    .await?;
                }
                OnExisting::GiveUp => {
                    return Err(Error::UsageInProgress { usage_id: entry.id });
                }
                OnExisting::Wait => tokio::time::sleep(DUPLICATE_POLL).await,
            }
        }
    }

    /// Reports under a claim this call just took on an existing row; if the
    /// connection can no longer report, nothing was sent and the key stays
    /// retryable.
    async fn attempt_claimed(
        self: &Arc<Self>,
        caller: &Caller,
        req: &UsageRequest,
        id: String,
    ) -> Result<UsageOutcome> {
        match self.check_reportable(caller, req).await {
            Ok(provider) => self.attempt_detached(caller, req, provider, id).await,
            Err(e) => {
                self.settle_unsent(&id, &e).await?;
                Err(e)
            }
        }
    }

    /// A claim by this process from now.
    fn claim(&self) -> Claim<'_> {
        let now = self.clock.now();
        Claim {
            owner: &self.owner,
            now,
            until: now + self.claim_lease.as_secs() as i64,
        }
    }

    /// Checks that the connection can report usage: it is the caller's,
    /// active, and its provider has a usage endpoint taking these credits.
    async fn check_reportable(
        &self,
        caller: &Caller,
        req: &UsageRequest,
    ) -> Result<Arc<ProviderSetting>> {
        let id = req.connection_id;
        let connection = connections::find(&self.db, caller, id)
            .await?
            .ok_or(Error::ConnectionNotFound { id })?;
        let connection = status::usable(connection)?;
        req.policy
            .provider(connection.provider.as_str())
            .map_err(|denied| Error::denied(caller, denied))?;
        let provider = self.providers.stored(&connection.provider)?;
        if provider.profile.usage_url.is_none() {
            return Err(Error::ProviderUnsupported {
                provider: provider.id.clone(),
                what: "has no usage endpoint",
            });
        }
        if provider.profile.usage_whole_credits && !req.credits.is_whole() {
            return Err(Error::invalid(
                "credits",
                format!(
                    "provider {:?} takes whole credits only",
                    provider.id.as_str()
                ),
            ));
        }
        Ok(provider)
    }

    /// Runs [`Self::attempt`] as its own task, so a caller that goes away
    /// mid-call cannot leave the claim pending after the provider answered.
    async fn attempt_detached(
        self: &Arc<Self>,
        caller: &Caller,
        req: &UsageRequest,
        provider: Arc<ProviderSetting>,
        id: String,
    ) -> Result<UsageOutcome> {
        let (ledger, caller, req) = (self.clone(), caller.clone(), req.clone());
        tokio::spawn(
            async move { ledger.attempt(&caller, &req, &provider, &id).await }.in_current_span(),
        )
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("usage task failed: {e}")))?
    }

    /// Runs [`Self::report`] while renewing the claim, so duplicates see a
    /// live holder however long the provider takes, and a dead one within a
    /// claim length.
    async fn attempt(
        &self,
        caller: &Caller,
        req: &UsageRequest,
        provider: &ProviderSetting,
        id: &str,
    ) -> Result<UsageOutcome> {
        let work = self.report(caller, req, provider, id);
        heartbeat::while_renewing(heartbeat::RENEW_EVERY, work, || async {
            let until = self.clock.now() + self.claim_lease.as_secs() as i64;
            if let Err(e) = usage::renew_claim(&self.db, id, &self.owner, until).await {
                tracing::warn!(usage_id = id, error = %e, "renewing the usage claim failed");
            }
        })
        .await
    }

    /// Calls the provider for a claimed row and settles it. A 401 gets one
    /// forced token refresh and one more call: the provider recorded nothing.
    async fn report(
        &self,
        caller: &Caller,
        req: &UsageRequest,
        provider: &ProviderSetting,
        id: &str,
    ) -> Result<UsageOutcome> {
        let url = provider.profile.usage_url.clone().unwrap_or_default();
        let mut refreshed = false;
        loop {
            let token = match self
                .tokens
                .access_token(
                    caller,
                    req.connection_id,
                    TOKEN_MIN_VALID_SECS,
                    refreshed,
                    Some(TOKEN_WAIT),
                )
                .await
            {
                Ok(token) => token,
                Err(e) => {
                    self.settle_unsent(id, &e).await?;
                    return Err(e);
                }
            };
            // From here a crash leaves the outcome unknown: say so first.
            usage::mark_sent(&self.db, id, &self.owner, self.clock.now()).await?;
            let (http_status, answer) = self
                .client
                .report_usage(provider, &url, &token.token, &req.usage, req.credits)
                .await;
            let verdict = classify_usage_answer(&answer, refreshed);
            let settled = match verdict {
                UsageVerdict::RetryWithFreshToken => {
                    refreshed = true;
                    continue;
                }
                UsageVerdict::Succeeded => UsageStatus::Succeeded,
                UsageVerdict::Rejected => UsageStatus::Rejected,
                UsageVerdict::Retryable => UsageStatus::Retryable,
                UsageVerdict::Unknown => UsageStatus::Unknown,
            };
            return match answer {
                Ok(response) => {
                    let text = Value::Object(response.clone()).to_string();
                    self.settle(id, settled, http_status, Some(&text), None)
                        .await?;
                    tracing::info!(usage_id = id, provider = %provider.id, "usage recorded");
                    Ok(UsageOutcome {
                        usage_id: id.to_owned(),
                        provider_response: response,
                        replayed: false,
                    })
                }
                Err(failure) => {
                    let e = Error::provider(&provider.id, Step::Usage, failure);
                    self.settle(id, settled, http_status, None, Some(&e.to_string()))
                        .await?;
                    Err(e)
                }
            };
        }
    }

    /// Nothing reached the provider: the key may be tried again.
    async fn settle_unsent(&self, id: &str, e: &Error) -> Result<()> {
        self.settle(id, UsageStatus::Retryable, None, None, Some(&e.to_string()))
            .await
    }

    async fn settle(
        &self,
        id: &str,
        status: UsageStatus,
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
        Ok(usage::settle(&self.db, id, settlement, self.clock.now()).await?)
    }

    /// The refusal an earlier attempt with this key met.
    async fn stored_rejection(
        &self,
        caller: &Caller,
        req: &UsageRequest,
        entry: UsageEntry,
    ) -> Error {
        let provider = match connections::find(&self.db, caller, req.connection_id).await {
            Ok(Some(c)) => c.provider,
            _ => ProviderId::trusted(""),
        };
        Error::UsageRejected {
            usage_id: entry.id,
            provider,
            message: entry
                .error
                .unwrap_or_else(|| "the provider rejected this usage".into()),
        }
    }
}
