//! A tower layer around every gRPC call: a span named after the method that
//! continues the caller's W3C trace (`traceparent` metadata), and the RPC
//! duration histogram by method and status code, both following the
//! OpenTelemetry RPC semantic conventions (`rpc.system`, `rpc.method`,
//! `rpc.grpc.status_code`, `error.type`, span status Error on a server fault).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use opentelemetry::{KeyValue, global, propagation::Extractor, trace::TraceContextExt as _};
use tracing::{Instrument, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::metrics::metrics;

/// Adds [`RpcService`] around the server's routes.
#[derive(Clone, Default)]
pub struct RpcLayer;

impl<S> tower_layer::Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService { inner }
    }
}

/// See the module comment.
#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

impl<S, B, R> tower_service::Service<http::Request<B>> for RpcService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("", &path));
        let span = tracing::info_span!(
            "rpc",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = Empty,
            error.type = Empty,
            otel.status_code = Empty,
            trace_id = Empty,
        );
        let parent = global::get_text_map_propagator(|p| p.extract(&Headers(request.headers())));
        let _ = span.set_parent(parent);
        let trace_id = span.context().span().span_context().trace_id();
        if trace_id != opentelemetry::trace::TraceId::INVALID {
            span.record("trace_id", tracing::field::display(trace_id));
        }
        let started = Instant::now();
        let call = self.inner.call(request);
        Box::pin(
            async move {
                let result = call.await;
                // A failed call answers "trailers-only": grpc-status in the
                // headers. Its absence means the status follows the body: OK.
                let code = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(0),
                    Err(_) => 2,
                };
                let span = tracing::Span::current();
                span.record("rpc.grpc.status_code", code);
                let [system, method, status] = [
                    KeyValue::new("rpc.system", "grpc"),
                    KeyValue::new("rpc.method", method_label(path)),
                    KeyValue::new("rpc.grpc.status_code", code),
                ];
                let seconds = started.elapsed().as_secs_f64();
                // On the stack: this runs for every call, cached tokens included.
                if code == 0 {
                    metrics()
                        .rpc_duration
                        .record(seconds, &[system, method, status]);
                } else {
                    let name = code_name(code);
                    span.record("error.type", name);
                    if server_fault(code) {
                        span.record("otel.status_code", "ERROR");
                    }
                    let error = KeyValue::new("error.type", name);
                    metrics()
                        .rpc_duration
                        .record(seconds, &[system, method, status, error]);
                }
                result
            }
            .instrument(span),
        )
    }
}

/// The gRPC status code's name, as `error.type` (OpenTelemetry RPC
/// semantic conventions).
fn code_name(code: i64) -> &'static str {
    match code {
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "_OTHER",
    }
}

/// Whether a code is the server's failure, so its span's status is Error:
/// the conventions' list for gRPC server spans. A caller's mistake
/// (NOT_FOUND, INVALID_ARGUMENT, …) keeps the status unset, with
/// `error.type` saying what it was.
fn server_fault(code: i64) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

/// The metric label for a request path: the method for the services served,
/// one bucket for anything else (this layer runs before authentication, so
/// arbitrary paths must not create time series).
fn method_label(path: String) -> String {
    const SERVED: [&str; 4] = [
        "/authbroker.v1.AuthBroker/",
        "/grpc.health.v1.Health/",
        "/grpc.reflection.v1.ServerReflection/",
        "/grpc.reflection.v1alpha.ServerReflection/",
    ];
    let known = SERVED.iter().any(|prefix| {
        path.strip_prefix(prefix).is_some_and(|m| {
            !m.is_empty() && m.len() <= 64 && m.bytes().all(|b| b.is_ascii_alphanumeric())
        })
    });
    if known { path } else { "other".to_owned() }
}
