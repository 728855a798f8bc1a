//! `/metrics` in the Prometheus text format (0.0.4): the same instruments
//! the OTLP exporter sends, read on each scrape through a manual reader of
//! the meter provider (cumulative, as Prometheus expects), and served by a
//! deliberately small HTTP/1.1 responder on `metrics_listen`.

use std::{fmt::Write as _, sync::Arc, time::Duration};

use opentelemetry::KeyValue;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    metrics::{
        InstrumentKind, ManualReader, Pipeline, Temporality,
        data::{AggregatedMetrics, MetricData, ResourceMetrics},
        reader::MetricReader,
    },
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// The reader the meter provider feeds and each scrape collects from.
#[derive(Debug, Clone, Default)]
pub struct ScrapeReader(Arc<ManualReader>);

impl MetricReader for ScrapeReader {
    fn register_pipeline(&self, pipeline: std::sync::Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

impl ScrapeReader {
    /// Every instrument's current values, as exposition text.
    pub fn scrape(&self) -> String {
        let mut rm = ResourceMetrics::default();
        if let Err(e) = self.0.collect(&mut rm) {
            tracing::warn!(error = %e, "collecting metrics for a scrape failed");
        }
        render(&rm)
    }
}

/// Scrapes answered at once; more connections are closed unanswered, so
/// the port can never hold the file descriptors the gRPC listener needs.
const MAX_SCRAPES: usize = 8;

/// Serves `GET /metrics` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, reader: ScrapeReader) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPES));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let reader = reader.clone();
        tokio::spawn(async move {
            // A scraper that stalls is dropped, not waited for.
            let _ = tokio::time::timeout(Duration::from_secs(10), answer(stream, &reader)).await;
            drop(slot);
        });
    }
}

/// One request, one answer, then the connection closes.
async fn answer(mut stream: TcpStream, reader: &ScrapeReader) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > 8192 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.lines().next().unwrap_or_default().split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", reader.scrape()),
        ("GET" | "HEAD", _) => ("404 Not Found", "only /metrics is served here\n".into()),
        _ => ("405 Method Not Allowed", "GET /metrics\n".into()),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The exposition text of `rm`.
pub(crate) fn render(rm: &ResourceMetrics) -> String {
    let mut out = String::new();
    for scope in rm.scope_metrics() {
        for metric in scope.metrics() {
            let base = metric_name(metric.name(), metric.unit());
            let help = metric
                .description()
                .replace('\\', "\\\\")
                .replace('\n', "\\n");
            match metric.data() {
                AggregatedMetrics::F64(data) => write_data(&mut out, &base, &help, data),
                AggregatedMetrics::U64(data) => write_data(&mut out, &base, &help, data),
                AggregatedMetrics::I64(data) => write_data(&mut out, &base, &help, data),
            }
        }
    }
    out
}

fn write_data<T: Copy + std::fmt::Display>(
    out: &mut String,
    base: &str,
    help: &str,
    data: &MetricData<T>,
) {
    match data {
        MetricData::Gauge(gauge) => {
            header(out, base, help, "gauge");
            for p in gauge.data_points() {
                sample(out, base, &labels(p.attributes(), None), p.value());
            }
        }
        MetricData::Sum(sum) if sum.is_monotonic() => {
            let name = format!("{base}_total");
            header(out, &name, help, "counter");
            for p in sum.data_points() {
                sample(out, &name, &labels(p.attributes(), None), p.value());
            }
        }
        MetricData::Sum(sum) => {
            header(out, base, help, "gauge");
            for p in sum.data_points() {
                sample(out, base, &labels(p.attributes(), None), p.value());
            }
        }
        MetricData::Histogram(histogram) => {
            header(out, base, help, "histogram");
            for p in histogram.data_points() {
                let mut cumulative = 0u64;
                let bounds: Vec<f64> = p.bounds().collect();
                for (i, count) in p.bucket_counts().enumerate() {
                    cumulative += count;
                    let le = bounds.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
                    let name = format!("{base}_bucket");
                    sample(out, &name, &labels(p.attributes(), Some(&le)), cumulative);
                }
                let plain = labels(p.attributes(), None);
                sample(out, &format!("{base}_sum"), &plain, p.sum());
                sample(out, &format!("{base}_count"), &plain, p.count());
            }
        }
        // Not produced by authbroker's instruments.
        MetricData::ExponentialHistogram(_) => {}
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name}{labels} {value}");
}

/// `{a="1",b="2"}` from OpenTelemetry attributes (names made Prometheus-safe,
/// values escaped), with `le` for a histogram bucket.
fn labels<'a>(attributes: impl Iterator<Item = &'a KeyValue>, le: Option<&str>) -> String {
    let mut pairs: Vec<String> = attributes
        .map(|kv| {
            format!(
                "{}=\"{}\"",
                sanitize(kv.key.as_str()),
                escape(&kv.value.to_string())
            )
        })
        .collect();
    // The SDK keeps attributes in no set order; a stable one diffs well.
    pairs.sort();
    if let Some(le) = le {
        pairs.push(format!("le=\"{le}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

/// The OpenTelemetry-to-Prometheus name: dots and other characters to `_`,
/// and the unit as a suffix (`s` → `_seconds`).
fn metric_name(name: &str, unit: &str) -> String {
    let mut name = sanitize(name);
    let suffix = match unit {
        "s" => "seconds",
        "ms" => "milliseconds",
        "By" => "bytes",
        _ => "",
    };
    if !suffix.is_empty() && !name.ends_with(suffix) {
        name.push('_');
        name.push_str(suffix);
    }
    name
}

fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use opentelemetry::metrics::MeterProvider;
    use opentelemetry_sdk::metrics::SdkMeterProvider;

    use super::*;

    #[test]
    fn instruments_render_as_prometheus_text() {
        let reader = ScrapeReader::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(reader.clone())
            .build();
        let meter = provider.meter("t");
        let hist = meter
            .f64_histogram("authbroker.rpc.duration")
            .with_unit("s")
            .with_description("RPC duration")
            .build();
        hist.record(0.003, &[KeyValue::new("rpc.method", "GetAccessToken")]);
        let counter = meter.u64_counter("authbroker.refreshes").build();
        counter.add(2, &[KeyValue::new("outcome", "say \"hi\"\n")]);
        let text = reader.scrape();
        assert!(
            text.contains("# TYPE authbroker_rpc_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.contains("authbroker_rpc_duration_seconds_bucket{rpc_method=\"GetAccessToken\",le=\"+Inf\"} 1"), "{text}");
        assert!(
            text.contains("authbroker_rpc_duration_seconds_count{rpc_method=\"GetAccessToken\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("authbroker_refreshes_total{outcome=\"say \\\"hi\\\"\\n\"} 2"),
            "{text}"
        );
        // Buckets are cumulative.
        let counts: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with("authbroker_rpc_duration_seconds_bucket"))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    }
}
