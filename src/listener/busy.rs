//! Marks a connection busy while a call on it runs, until the last byte of
//! its response (a stream included) is sent, so the idle timeout and
//! eviction never cut a call short.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http_body::{Body, Frame, SizeHint};

use super::{conn::ConnInfo, registry::Activity};

/// Adds [`BusyService`] around the server's routes.
#[derive(Clone, Default)]
pub struct BusyLayer;

impl<S> tower_layer::Layer<S> for BusyLayer {
    type Service = BusyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BusyService { inner }
    }
}

/// See the module comment.
#[derive(Clone)]
pub struct BusyService<S> {
    inner: S,
}

/// Ends the call on its connection when dropped.
pub struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.call_started();
        Self(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.call_ended();
    }
}

impl<S, B, R> tower_service::Service<http::Request<B>> for BusyService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = http::Response<Guarded<R, Busy>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let busy = request
            .extensions()
            .get::<ConnInfo>()
            .map(|info| Busy::start(&info.activity));
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            Ok(response.map(|inner| Guarded::new(inner, busy)))
        })
    }
}

/// A response body that holds `guard` (a busy mark, a concurrency permit)
/// until its last frame is sent or it is dropped.
pub struct Guarded<B, G> {
    inner: B,
    guard: Option<G>,
}

impl<B: Default, G> Default for Guarded<B, G> {
    fn default() -> Self {
        Self::new(B::default(), None)
    }
}

impl<B, G> Guarded<B, G> {
    pub(crate) fn new(inner: B, guard: Option<G>) -> Self {
        Self { inner, guard }
    }
}

impl<B: Body + Unpin, G: Unpin> Body for Guarded<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) {
            this.guard = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
