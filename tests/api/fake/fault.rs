//! The answers of a misbehaving provider. A faulty endpoint answers with these instead of doing its work,
//! so a fault never consumes a code or rotates a token.

use std::time::Duration;

use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::response::{IntoResponse, Response};

use super::Fault;

/// How long `Fault::Hang` keeps the connection open without answering: longer than any test runs.
const HANG: Duration = Duration::from_secs(3600);

/// The faulty answer, or `None` when the endpoint should behave.
pub(super) async fn respond(fault: &Fault) -> Option<Response> {
    let response = match fault {
        Fault::None => return None,
        // A login or maintenance page served by a misconfigured proxy.
        Fault::Html => (
            StatusCode::OK,
            [(CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Please sign in</h1></body></html>",
        )
            .into_response(),
        Fault::MalformedJson => (
            StatusCode::OK,
            [(CONTENT_TYPE, "application/json")],
            r#"{"access_token": "#,
        )
            .into_response(),
        Fault::ServerError => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Service Unavailable",
        )
            .into_response(),
        Fault::Hang => {
            tokio::time::sleep(HANG).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Fault::MissingAccessToken => (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "token_type": "Bearer", "expires_in": 3600 })),
        )
            .into_response(),
        Fault::TooManyRequests { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            [(RETRY_AFTER, retry_after_secs.to_string())],
            "Too Many Requests",
        )
            .into_response(),
    };
    Some(response)
}
