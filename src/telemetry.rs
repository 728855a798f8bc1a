//! Logs, traces and metrics. Logs go to stderr (text or JSON, with the trace
//! id of the RPC they belong to). Traces and metrics are exported over OTLP
//! only when the standard `OTEL_EXPORTER_OTLP_*ENDPOINT` variables are set;
//! otherwise nothing is exported and nothing breaks. With `metrics_listen`
//! the same metrics are also scraped from `/metrics` (see [`prometheus`]).
//!
//! Secrets never reach any of them: they are typed ([`crate::secret::Secret`]
//! prints `[redacted]`), provider bodies are never recorded, and span
//! attributes are ids, names and codes only.

pub(crate) mod metrics;
pub mod prometheus;
pub(crate) mod rpc;

use std::sync::OnceLock;

use opentelemetry::{KeyValue, global, trace::TracerProvider as _};
use opentelemetry_sdk::{
    Resource, metrics::SdkMeterProvider, propagation::TraceContextPropagator,
    trace::SdkTracerProvider,
};
use tracing::Level;
use tracing_subscriber::{
    EnvFilter, Layer, filter::Targets, fmt, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::config::LogFormat;

/// Default filter: sqlx and the HTTP stacks log every statement or frame at
/// info/debug, which drowns the service's own lines.
const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,h2=warn,hyper=warn,tower=warn,reqwest=warn,opentelemetry=warn";

/// Keeps the exporters alive; [`Telemetry::shutdown`] flushes them.
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporters.
    pub fn shutdown(self) {
        if let Some(tracer) = self.tracer {
            let _ = tracer.shutdown();
        }
        if let Some(meter) = self.meter {
            let _ = meter.shutdown();
        }
    }
}

/// Whether the OTLP variables ask for export.
fn otlp_requested() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled
        && (set("OTEL_EXPORTER_OTLP_ENDPOINT")
            || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
}

fn resource() -> Resource {
    let builder = Resource::builder();
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read by the builder;
    // without them the service still names itself.
    let builder = if std::env::var("OTEL_SERVICE_NAME").is_ok() {
        builder
    } else {
        builder.with_service_name("authbroker")
    };
    builder
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Installs logging and, when asked for, OTLP export. Call inside the tokio
/// runtime (the exporters' gRPC clients live on it). `filter` is the
/// `AUTHBROKER_LOG` value, if set.
/// `scrape`: also keep the metrics for `/metrics` (`metrics_listen` is set).
pub fn init(format: LogFormat, filter: Option<&str>, scrape: bool) -> Telemetry {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let mut telemetry = Telemetry {
        tracer: None,
        meter: None,
    };
    let mut export_error = None;
    let mut metric_exporter = None;
    if otlp_requested() {
        match build_exporters() {
            Ok((tracer, exporter)) => {
                telemetry.tracer = Some(tracer);
                metric_exporter = Some(exporter);
            }
            Err(e) => export_error = Some(e),
        }
    }
    let reader = scrape.then(prometheus::ScrapeReader::default);
    if metric_exporter.is_some() || reader.is_some() {
        let mut builder = SdkMeterProvider::builder().with_resource(resource());
        if let Some(exporter) = metric_exporter {
            builder = builder.with_periodic_exporter(exporter);
        }
        if let Some(reader) = &reader {
            builder = builder.with_reader(reader.clone());
            let _ = SCRAPE.set(reader.clone());
        }
        let meter = builder.build();
        global::set_meter_provider(meter.clone());
        telemetry.meter = Some(meter);
    }
    metrics::init();

    let filter = EnvFilter::try_new(filter.unwrap_or(DEFAULT_FILTER))
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Colours only for a person at a terminal, never into files or collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt_layer = match format {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    // Only authbroker's own spans are exported: the exporter's transport
    // (h2, hyper, tonic, tower) would otherwise trace itself.
    let otel_layer = telemetry.tracer.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("authbroker"))
            .with_filter(Targets::new().with_target("authbroker", Level::INFO))
    });
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init();
    match (&export_error, &telemetry.tracer) {
        (Some(e), _) => {
            tracing::warn!(error = %e, "OpenTelemetry export is off: the exporter could not be built")
        }
        (None, Some(_)) => tracing::info!("exporting traces and metrics over OTLP"),
        (None, None) => {}
    }
    telemetry
}

/// The reader `/metrics` collects from, once [`init`] installed one.
static SCRAPE: OnceLock<prometheus::ScrapeReader> = OnceLock::new();

/// The installed scrape reader, if `metrics_listen` asked for one.
pub fn scrape_reader() -> Option<prometheus::ScrapeReader> {
    SCRAPE.get().cloned()
}

fn build_exporters() -> Result<
    (SdkTracerProvider, opentelemetry_otlp::MetricExporter),
    opentelemetry_otlp::ExporterBuildError,
> {
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()?;
    let metrics = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .build()?;
    let tracer = SdkTracerProvider::builder()
        .with_batch_exporter(spans)
        .with_resource(resource())
        .build();
    Ok((tracer, metrics))
}
