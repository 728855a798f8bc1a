//! Turns the handlers' `RejectReason` into `rejections()` entries, and answers the paths and methods
//! the provider does not serve (themselves rejections).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Inner;
use super::wire::{Reject, RejectReason};

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

/// Answer to a path the provider does not serve.
pub(super) async fn no_route() -> Response {
    Reject::page(StatusCode::NOT_FOUND, "no such endpoint at this provider").into_response()
}

/// Answer to a known path called with the wrong method.
pub(super) async fn wrong_method() -> Response {
    Reject::page(
        StatusCode::METHOD_NOT_ALLOWED,
        "wrong HTTP method for this endpoint",
    )
    .into_response()
}
