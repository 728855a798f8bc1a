//! Records every request before it is answered (so a request left hanging is still seen, with status 0),
//! then its status and when it was answered, and turns the handler's `RejectReason` into a
//! `rejections()` entry.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::wire::{Reject, RejectReason};
use super::{Inner, RecordedRequest};

/// Bodies larger than this are refused; no provider request comes close.
const BODY_LIMIT: usize = 1 << 20;

pub(super) async fn record(
    State(fake): State<Arc<Inner>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method.to_string();
    let path = parts.uri.path().to_owned();
    let bytes = to_bytes(body, BODY_LIMIT).await.unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let recorded = RecordedRequest {
        method: method.clone(),
        path: path.clone(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        status: 0,
        received_at: Instant::now(),
        answered_at: None,
    };
    let index = {
        let mut state = fake.lock();
        state.requests.push(recorded);
        state.requests.len() - 1
    };

    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;

    let mut state = fake.lock();
    let recorded = &mut state.requests[index];
    recorded.status = response.status().as_u16();
    recorded.answered_at = Some(Instant::now());
    if let Some(RejectReason(reason)) = response.extensions().get::<RejectReason>() {
        state.rejections.push(format!("{method} {path}: {reason}"));
    }
    response
}

/// Answer to a path the provider does not serve.
pub(crate) async fn no_route() -> Response {
    Reject::page(StatusCode::NOT_FOUND, "no such endpoint at this provider").into_response()
}

/// Answer to a known path called with the wrong method.
pub(crate) async fn wrong_method() -> Response {
    Reject::page(
        StatusCode::METHOD_NOT_ALLOWED,
        "wrong HTTP method for this endpoint",
    )
    .into_response()
}
