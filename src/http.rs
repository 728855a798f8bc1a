//! The outbound HTTP client: connect and total timeouts, a response-size cap,
//! no redirects (a token endpoint that redirects must not receive our
//! credentials twice), and failures turned into [`ProviderFailure`]s.

use std::time::Instant;

use opentelemetry::KeyValue;
use tracing::{Instrument, field::Empty};

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use crate::{
    config::HttpSettings,
    flow::{
        OutboundRequest, ProviderFailure,
        answer::{StatusClass, classify_status},
    },
    telemetry::metrics::metrics,
};

/// A provider's answer. `Debug` omits the body, which may hold tokens.
pub(crate) struct HttpResponse {
    /// HTTP status code.
    pub(crate) status: u16,
    /// The `content-type` header, lower-cased, or empty.
    pub(crate) content_type: String,
    /// `Retry-After` in seconds, when given as a number.
    pub(crate) retry_after: Option<u64>,
    /// The body, at most the configured cap.
    pub(crate) body: Vec<u8>,
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Shared outbound client (connection pooling across calls).
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: reqwest::Client,
    max_response_bytes: usize,
}

impl HttpClient {
    /// Builds the client. Needs a rustls crypto provider installed (see `app`).
    pub(crate) fn new(settings: &HttpSettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("authbroker/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            max_response_bytes: settings.max_response_bytes,
        })
    }

    /// Performs `request` to `provider`'s `endpoint` (token, userinfo,
    /// usage) in a client span, recording its duration and outcome.
    pub(crate) async fn send(
        &self,
        provider: &str,
        endpoint: &'static str,
        request: &OutboundRequest,
    ) -> Result<HttpResponse, ProviderFailure> {
        let span = tracing::info_span!(
            "provider",
            otel.name = format!("{endpoint} {provider}"),
            otel.kind = "client",
            provider,
            endpoint,
            http.request.method = request.method,
            http.response.status_code = Empty,
            outcome = Empty,
        );
        let started = Instant::now();
        let method = if request.method == "GET" {
            reqwest::Method::GET
        } else {
            reqwest::Method::POST
        };
        let mut builder = self.client.request(method, &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value.expose());
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.expose().to_owned());
        }
        let result = self.read(builder).instrument(span.clone()).await;
        let elapsed = started.elapsed();
        let outcome = match &result {
            Ok(resp) => match classify_status(resp.status) {
                StatusClass::Success => "success",
                StatusClass::Unavailable { .. } => "unavailable",
                StatusClass::Rejected => "rejected",
            },
            Err(ProviderFailure::Unavailable { .. }) => "unreachable",
            Err(_) => "invalid",
        };
        if let Ok(resp) = &result {
            span.record("http.response.status_code", resp.status);
        }
        span.record("outcome", outcome);
        metrics().provider_duration.record(
            elapsed.as_secs_f64(),
            &[
                KeyValue::new("provider", provider.to_owned()),
                KeyValue::new("endpoint", endpoint),
                KeyValue::new("outcome", outcome),
            ],
        );
        let elapsed_ms = elapsed.as_millis() as u64;
        span.in_scope(|| match &result {
            Ok(resp) => tracing::debug!(status = resp.status, elapsed_ms, "provider answered"),
            Err(failure) => tracing::warn!(elapsed_ms, ?failure, "provider call failed"),
        });
        result
    }

    async fn read(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<HttpResponse, ProviderFailure> {
        let mut response = builder.send().await.map_err(transport_failure)?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_failure)? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(ProviderFailure::Malformed {
                    http_status: Some(status),
                    reason: format!(
                        "provider answer larger than {} bytes",
                        self.max_response_bytes
                    ),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            content_type,
            retry_after,
            body,
        })
    }
}

/// Classifies a transport error without its Display, which can embed URLs.
fn transport_failure(e: reqwest::Error) -> ProviderFailure {
    // A connect timeout is both: it never reached the provider.
    let reason = if e.is_connect() {
        "provider could not be reached"
    } else if e.is_timeout() {
        "provider did not answer in time"
    } else if e.is_body() || e.is_decode() {
        "provider answer was cut off"
    } else {
        "provider request failed"
    };
    ProviderFailure::Unavailable {
        http_status: None,
        reason: reason.into(),
        retry_after: None,
        retry_safe: e.is_connect(),
    }
}
