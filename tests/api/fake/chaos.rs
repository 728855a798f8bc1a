//! Random misbehaviour for soak runs: a share of token and usage requests is answered with a 5xx and a
//! share is answered late. A 5xx answer is given instead of the endpoint's work, like a `Fault`, so it
//! never spends a code, rotates a token or charges credits; a late answer does the work and answers
//! normally, only later.

use std::ops::Range;
use std::time::Duration;

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::{FakeProvider, Inner};

/// The 5xx statuses a chaotic provider answers with, drawn evenly. 503 is the one a client may retry
/// blindly (nothing was done); after the others a client cannot know whether the work was done.
const SERVER_ERRORS: [StatusCode; 4] = [
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::GATEWAY_TIMEOUT,
];

/// How often the token and usage endpoints misbehave; all zero (the default) means never.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chaos {
    /// Share of requests (0 to 1) answered with a 5xx from `SERVER_ERRORS`, without doing their work.
    pub server_error: f64,
    /// Share of requests (0 to 1) answered late, by a delay drawn evenly from `slow_by`: half of them
    /// wait before doing the work (a provider slow to process), half after it (slow to answer, the
    /// window in which a client that dies loses what the provider already did).
    pub slow: f64,
    /// The delay of a late answer.
    pub slow_by: Range<Duration>,
}

impl FakeProvider {
    /// Random misbehaviour of the token and usage endpoints from now on (`Chaos::default()` stops
    /// it). Each request draws once, at the point where a `Fault` would take over.
    pub fn set_chaos(&self, chaos: Chaos) {
        for share in [chaos.server_error, chaos.slow] {
            assert!((0.0..=1.0).contains(&share), "a share is within 0..=1");
        }
        assert!(
            chaos.server_error + chaos.slow <= 1.0,
            "server_error and slow are shares of the same requests"
        );
        self.inner.lock().chaos = chaos;
    }
}

/// What one request drew.
pub(super) struct Turn {
    server_error: Option<StatusCode>,
    before_work: Duration,
    after_work: Duration,
}

/// Draws the misbehaviour of one request.
pub(super) fn draw(fake: &Inner) -> Turn {
    let chaos = fake.lock().chaos.clone();
    let mut turn = Turn {
        server_error: None,
        before_work: Duration::ZERO,
        after_work: Duration::ZERO,
    };
    let roll: f64 = rand::random();
    if roll < chaos.server_error {
        turn.server_error = Some(SERVER_ERRORS[rand::random_range(0..SERVER_ERRORS.len())]);
    } else if roll < chaos.server_error + chaos.slow && !chaos.slow_by.is_empty() {
        let delay = rand::random_range(chaos.slow_by.clone());
        if rand::random::<bool>() {
            turn.before_work = delay;
        } else {
            turn.after_work = delay;
        }
    }
    turn
}

impl Turn {
    /// Waits if the request is slow to process; the 5xx answer to give instead of the work, if any.
    pub(super) async fn before_work(&self) -> Option<Response> {
        if !self.before_work.is_zero() {
            tokio::time::sleep(self.before_work).await;
        }
        let status = self.server_error?;
        let text = status.canonical_reason().unwrap_or("Server Error");
        Some((status, [(CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
    }

    /// Waits if the request is slow to answer (its work is done).
    pub(super) async fn after_work(&self) {
        if !self.after_work.is_zero() {
            tokio::time::sleep(self.after_work).await;
        }
    }
}
