//! The gRPC listener's own defences: no client, authenticated or not, can
//! exhaust the process by opening connections. Each connection must finish
//! its handshake within `handshake_timeout` and is closed after
//! `idle_timeout` without a call; at `max_connections` (never more than the
//! file-descriptor limit allows) the listener closes the connection that
//! matters least to make room for a new one, and an accept failure (out of
//! descriptors) never spins. Calls mark their connection busy (`busy`), so
//! no limit here cuts a call short.

mod busy;
mod conn;
mod registry;
mod shed;
mod socket;
mod tls;

use std::{io, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::mpsc};
use tokio_stream::wrappers::ReceiverStream;

pub use busy::BusyLayer;
pub use shed::ShedLayer;

use crate::telemetry::metrics;
pub(crate) use conn::{Conn, ConnInfo, Timeouts};
use registry::Registry;
pub(crate) use socket::Socket;
pub(crate) use tls::{PeerIdentity, Tls};

/// Descriptors kept back from connections: the database pool, provider
/// calls, the telemetry exporter, files and the health listener.
const RESERVED_FDS: u64 = 128;
/// How long the accept loop pauses after a failed accept (out of
/// descriptors): long enough not to spin, short enough to go unnoticed.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Deadlines per connection.
    pub handshake_timeout: Duration,
    /// See [`Timeouts::idle`].
    pub idle_timeout: Duration,
}

/// The connections the listener may hold: `configured`, and never more
/// than the process's descriptor limit leaves room for.
pub(crate) fn effective_max(configured: usize) -> usize {
    match open_files_limit() {
        Some(limit) => configured.min(limit.saturating_sub(RESERVED_FDS).max(16) as usize),
        None => configured,
    }
}

/// The soft limit on open files, from `/proc/self/limits` (Linux).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Accepts connections on `listener` under `limits`, as a stream for
/// `tonic`'s `serve_with_incoming`. `name` labels logs and metrics.
/// With `tls`, each connection's TLS handshake runs on its own task, bounded
/// by the handshake timeout, so a slow one holds up no other.
pub(crate) fn incoming(
    listener: TcpListener,
    limits: ConnLimits,
    tls: Option<Arc<Tls>>,
    name: &'static str,
) -> ReceiverStream<io::Result<Conn<Socket>>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(accept_loop(listener, limits, tls, name, tx));
    ReceiverStream::new(rx)
}

async fn accept_loop(
    listener: TcpListener,
    limits: ConnLimits,
    tls: Option<Arc<Tls>>,
    name: &'static str,
    tx: mpsc::Sender<io::Result<Conn<Socket>>>,
) {
    let registry = Arc::new(Registry::default());
    let timeouts = Timeouts {
        handshake: limits.handshake_timeout,
        idle: limits.idle_timeout,
    };
    let mut failing = false;
    loop {
        let (stream, _remote): (tokio::net::TcpStream, std::net::SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most likely: make room and pause
                    // instead of retrying in a tight loop.
                    if !failing {
                        tracing::warn!(listener = name, error = %e, open = registry.len(), "accepting a connection failed; closing an idle one to make room");
                        failing = true;
                    }
                    registry.evict_one();
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = tx.closed() => return,
        };
        failing = false;
        if registry.len() >= limits.max_connections {
            if registry.evict_one() {
                metrics::connection_shed(name, "evicted");
            } else {
                // Every connection carries a call: refuse this one.
                metrics::connection_shed(name, "refused");
                drop(stream);
                continue;
            }
        }
        let _ = stream.set_nodelay(true);
        let activity = registry.open();
        let Some(tls) = &tls else {
            let conn = Conn::new(
                Socket::Plain(stream),
                activity,
                registry.clone(),
                timeouts,
                None,
            );
            if tx.send(Ok(conn)).await.is_err() {
                return;
            }
            continue;
        };
        let (acceptor, tx, registry) = (
            tokio_rustls::TlsAcceptor::from(tls.config()),
            tx.clone(),
            registry.clone(),
        );
        tokio::spawn(async move {
            match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(secured)) => {
                    let peer = secured
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(PeerIdentity::of)
                        .map(Arc::new);
                    let socket = Socket::Tls(Box::new(secured));
                    let conn = Conn::new(socket, activity, registry, timeouts, peer);
                    let _ = tx.send(Ok(conn)).await;
                }
                Ok(Err(e)) => {
                    registry.closed(&activity);
                    tracing::debug!(listener = name, error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    registry.closed(&activity);
                    tracing::debug!(listener = name, "TLS handshake timed out");
                }
            }
        });
    }
}
