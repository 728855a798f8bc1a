//! An in-process OTLP collector: a tonic server implementing the trace and
//! metrics collector services, keeping everything it receives.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    metrics::v1::metric::Data,
    trace::v1::Span,
};
use tonic::{Request, Response, Status};

#[derive(Default)]
struct Received {
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
}

/// The collector; clones share what was received.
#[derive(Clone, Default)]
pub struct Collector {
    received: Arc<Mutex<Received>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.received
            .lock()
            .expect("lock")
            .traces
            .push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.received
            .lock()
            .expect("lock")
            .metrics
            .push(request.into_inner());
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

impl Collector {
    /// Serves on 127.0.0.1:0; returns the collector and its address.
    pub async fn start() -> (Collector, SocketAddr) {
        let collector = Collector::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(MetricsServiceServer::new(collector.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        tokio::spawn(server);
        (collector, addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        let received = self.received.lock().expect("lock");
        received
            .traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| ss.spans.clone())
            .collect()
    }

    /// Names of every metric received so far.
    pub fn metric_names(&self) -> Vec<String> {
        let received = self.received.lock().expect("lock");
        let mut names: Vec<String> = received
            .metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| sm.metrics.iter().map(|m| m.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Every attribute value anywhere (resources, spans, events, data points), as text.
    pub fn all_attribute_values(&self) -> Vec<String> {
        let received = self.received.lock().expect("lock");
        let mut attributes: Vec<&KeyValue> = Vec::new();
        for request in &received.traces {
            for rs in &request.resource_spans {
                attributes.extend(rs.resource.iter().flat_map(|r| &r.attributes));
                for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                    attributes.extend(&span.attributes);
                    attributes.extend(span.events.iter().flat_map(|e| &e.attributes));
                }
            }
        }
        for request in &received.metrics {
            for rm in &request.resource_metrics {
                attributes.extend(rm.resource.iter().flat_map(|r| &r.attributes));
                for metric in rm.scope_metrics.iter().flat_map(|sm| &sm.metrics) {
                    match &metric.data {
                        Some(Data::Sum(sum)) => {
                            attributes.extend(sum.data_points.iter().flat_map(|p| &p.attributes))
                        }
                        Some(Data::Gauge(g)) => {
                            attributes.extend(g.data_points.iter().flat_map(|p| &p.attributes))
                        }
                        Some(Data::Histogram(h)) => {
                            attributes.extend(h.data_points.iter().flat_map(|p| &p.attributes))
                        }
                        _ => {}
                    }
                }
            }
        }
        attributes
            .into_iter()
            .map(|kv| format!("{}={}", kv.key, text(kv.value.as_ref())))
            .collect()
    }
}

/// An attribute of a span as text, if present.
pub fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| text(kv.value.as_ref()))
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}
