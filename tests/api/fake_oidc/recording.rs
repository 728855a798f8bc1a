//! Turns the handlers' `RejectReason` into `rejections()` entries.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::Inner;
use super::wire::RejectReason;

pub(super) async fn record(
    State(fake): State<Arc<Inner>>,
    request: Request,
    next: Next,
) -> Response {
    let label = format!("{} {}", request.method(), request.uri().path());
    let response = next.run(request).await;
    if let Some(RejectReason(reason)) = response.extensions().get::<RejectReason>() {
        fake.lock().rejections.push(format!("{label}: {reason}"));
    }
    response
}
