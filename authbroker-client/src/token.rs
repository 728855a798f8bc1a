//! An access token for one connection, fetched when needed and kept until
//! it nears its expiry: most calls then cost no round trip at all.

use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;

use crate::{Client, Error, RetryPolicy, pb};

/// Caches the access token of one connection.
pub struct TokenSource {
    client: Client,
    connection_id: String,
    /// A token with less than this left is fetched again.
    margin: Duration,
    required_scopes: Vec<String>,
    retry: RetryPolicy,
    /// The token and its expiry; one fetch at a time.
    cached: Mutex<Option<(String, SystemTime)>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("connection_id", &self.connection_id)
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A source for `connection_id`: tokens are fetched again when less
    /// than 60 s remain, with the default [`RetryPolicy`].
    pub fn new(client: Client, connection_id: impl Into<String>) -> Self {
        Self {
            client,
            connection_id: connection_id.into(),
            margin: Duration::from_secs(60),
            required_scopes: Vec::new(),
            retry: RetryPolicy::default(),
            cached: Mutex::new(None),
        }
    }

    /// Fetches again when less than `margin` remains (it is also the
    /// validity asked of the server).
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Scopes every token must carry (GetAccessToken's `required_scopes`).
    pub fn with_required_scopes(mut self, scopes: impl IntoIterator<Item = String>) -> Self {
        self.required_scopes = scopes.into_iter().collect();
        self
    }

    /// Retries with `retry` instead of the default policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// A token valid for at least the margin: the cached one, or a new one.
    pub async fn token(&self) -> Result<String, Error> {
        let mut cached = self.cached.lock().await;
        if let Some((token, expires_at)) = cached.as_ref()
            && expires_at
                .duration_since(SystemTime::now())
                .is_ok_and(|left| left > self.margin)
        {
            return Ok(token.clone());
        }
        let request = pb::GetAccessTokenRequest {
            connection_id: self.connection_id.clone(),
            min_valid_seconds: self.margin.as_secs().clamp(1, 86_400) as u32,
            required_scopes: self.required_scopes.clone(),
            ..Default::default()
        };
        let answer = self
            .retry
            .run(|| {
                let mut client = self.client.clone();
                let request = request.clone();
                async move { client.get_access_token(request).await }
            })
            .await?
            .into_inner();
        let expires_at = answer
            .expires_at
            .and_then(|t| {
                SystemTime::UNIX_EPOCH.checked_add(Duration::new(
                    u64::try_from(t.seconds).ok()?,
                    u32::try_from(t.nanos).ok()?,
                ))
            })
            .unwrap_or_else(SystemTime::now);
        *cached = Some((answer.access_token.clone(), expires_at));
        Ok(answer.access_token)
    }

    /// Forgets the cached token (e.g. after the provider refused it), so
    /// the next [`token`](Self::token) asks the server.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}
