//! Load shedding: at most `max_in_flight` calls run at once in the process;
//! one more is answered RESOURCE_EXHAUSTED (OVERLOADED) at once, before any
//! work, instead of queueing behind the others until every caller times
//! out. Health checks are never shed: a busy replica is not a dead one.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::busy::Guarded;
use crate::error::Error;

/// Health checks pass unlimited.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

/// Adds [`ShedService`] around the server's routes.
#[derive(Clone)]
pub struct ShedLayer {
    permits: Arc<Semaphore>,
}

impl ShedLayer {
    /// At most `max_in_flight` calls at once.
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight)),
        }
    }
}

impl<S> tower_layer::Layer<S> for ShedLayer {
    type Service = ShedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ShedService {
            inner,
            permits: self.permits.clone(),
        }
    }
}

/// See the module comment.
#[derive(Clone)]
pub struct ShedService<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S, B, R> tower_service::Service<http::Request<B>> for ShedService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<Guarded<R, OwnedSemaphorePermit>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let permit = if request.uri().path().starts_with(HEALTH_PREFIX) {
            None
        } else {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    let shed = tonic::Status::from(Error::Overloaded)
                        .into_http::<R>()
                        .map(|body| Guarded::new(body, None));
                    return Box::pin(async move { Ok(shed) });
                }
            }
        };
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            Ok(response.map(|inner| Guarded::new(inner, permit)))
        })
    }
}
