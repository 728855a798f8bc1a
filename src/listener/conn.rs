//! One accepted connection: the socket, closed (by failing its next read)
//! when its handshake or idle deadline passes or the listener evicts it.
//! Reads count the HTTP/2 preface so a connection that never completes it
//! is held to the handshake deadline.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

use super::{
    registry::{Activity, Deadline, Registry},
    tls::PeerIdentity,
};

/// The client's HTTP/2 preface (24 bytes) and the header of the SETTINGS
/// frame that must follow it (9 bytes): once read, the handshake is done.
const HANDSHAKE_BYTES: usize = 24 + 9;

/// The deadlines a connection is held to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// From accept to a complete (TLS and) HTTP/2 handshake.
    pub(crate) handshake: Duration,
    /// Without a call in flight.
    pub(crate) idle: Duration,
}

/// What every call on a connection can see of it (a request extension).
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    /// The connection's activity, which calls mark busy.
    pub(crate) activity: Arc<Activity>,
    /// Who the peer's verified client certificate says it is (mTLS).
    pub(crate) peer: Option<Arc<PeerIdentity>>,
}

/// An accepted connection; see the module comment.
pub(crate) struct Conn<IO> {
    io: IO,
    activity: Arc<Activity>,
    registry: Arc<Registry>,
    timeouts: Timeouts,
    timer: Pin<Box<Sleep>>,
    handshake_left: usize,
    peer: Option<Arc<PeerIdentity>>,
}

impl<IO> Conn<IO> {
    pub(crate) fn new(
        io: IO,
        activity: Arc<Activity>,
        registry: Arc<Registry>,
        timeouts: Timeouts,
        peer: Option<Arc<PeerIdentity>>,
    ) -> Self {
        Self {
            io,
            activity,
            registry,
            timeouts,
            timer: Box::pin(tokio::time::sleep(timeouts.handshake)),
            handshake_left: HANDSHAKE_BYTES,
            peer,
        }
    }

    /// Whether the connection must close now; arms the timer otherwise.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.activity.register(cx.waker());
        match self
            .activity
            .deadline(self.timeouts.handshake, self.timeouts.idle)
        {
            Deadline::Now => true,
            Deadline::None => false,
            Deadline::At(at) => {
                let at = Instant::from_std(at);
                if self.timer.deadline() != at {
                    self.timer.as_mut().reset(at);
                }
                self.timer.as_mut().poll(cx).is_ready()
            }
        }
    }
}

impl<IO> Drop for Conn<IO> {
    fn drop(&mut self) {
        self.registry.closed(&self.activity);
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Conn<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.expired(cx) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection closed: handshake or idle timeout, or evicted to make room",
            )));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if this.handshake_left > 0 && matches!(read, Poll::Ready(Ok(()))) {
            let n = buf.filled().len() - before;
            this.handshake_left = this.handshake_left.saturating_sub(n);
            if this.handshake_left == 0 {
                this.activity.handshake_done();
            }
        }
        read
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Conn<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<IO> tonic::transport::server::Connected for Conn<IO> {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        ConnInfo {
            activity: self.activity.clone(),
            peer: self.peer.clone(),
        }
    }
}
