//! The accept loop: one task per connection, caps on open connections (in all and per
//! client address), hyper's header-read timeout, and a graceful drain when the shutdown
//! future completes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;

use super::App;
use super::client_addr::TrustedProxies;
use super::response::Body;
use super::routes;
use crate::federation::address::rate_limit_key;

/// How long in-flight requests may take to finish after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head accepted; larger ones get `431`.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Connections the kernel queues for `accept` (capped by `net.core.somaxconn`). tokio's
/// `TcpListener::bind` asks for 128, like std: a burst of new visitors larger than that
/// overflows the queue while the accept loop catches up, and each dropped handshake is
/// retried by the client only after a second (`benches/herd.rs` showed p99 at 1.2 s).
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listener on `addr` as `TcpListener::bind` does (with `SO_REUSEADDR`, so a
/// restarted node can bind while old connections linger), but with [`LISTEN_BACKLOG`].
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `node` on `listener` until `shutdown` completes, then stops accepting and drains
/// the open connections for at most [`DRAIN_TIMEOUT`]. Tests bind port 0 and pass their own
/// shutdown future.
pub async fn run(listener: TcpListener, app: impl Into<App>, shutdown: impl Future<Output = ()>) {
    let app: App = app.into();
    let node = app.node().clone();
    // Within HTTP's share of the descriptor limit, so the node keeps descriptors for its
    // own requests (Docker Hub, probes) whatever the flag says.
    let max_connections = node
        .config()
        .max_connections
        .min(crate::descriptors::Budget::current().http);
    let connections = Arc::new(Semaphore::new(max_connections as usize));
    // Never more than half of all slots, so one address never holds them all, whatever
    // the two flags say.
    let per_client = PerClient::new(
        node.config()
            .max_connections_per_client
            .min(max_connections / 2),
        app.trusted_proxies().clone(),
    );
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    // `--header-timeout` is hyper's header-read timeout: its timer starts when hyper begins
    // to read a request head, which is when the connection starts and again once the last
    // byte of the previous answer is flushed to the socket (hyper marks a kept-alive
    // connection idle only then), and stops when the head is in. So it bounds the idle
    // wait between requests too, and never runs while an answer is still being written to
    // a slow reader. On expiry hyper closes the connection without an answer.
    http.timer(TokioTimer::new())
        .header_read_timeout(node.config().header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    // The federation's loop runs as long as the server accepts.
    let (stop_network, network_stopped) = tokio::sync::watch::channel(false);
    let network_loop = tokio::spawn(Arc::clone(node.driver()).run(network_stopped));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors: keep serving the connections we have, and
                    // try again shortly. A connection reset before accept: the next one.
                    if let Some(pause) = crate::descriptors::accept_pause(&err) {
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(pause).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // At the cap, a new connection is closed at once: the ones already open keep their
        // service, which is what matters under a flood.
        let Some(per_client) = per_client.admit(peer.ip()) else {
            tracing::debug!(%peer, "connection limit per client reached; closing");
            continue;
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            tracing::debug!(%peer, "connection limit reached; closing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let ip = peer.ip();
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            // hyper calls this once a whole request head is in.
            let started = tokio::time::Instant::now();
            if let Some(response) = routes::handle_remembered(&app, &request, started) {
                // The request's head shares hyper's read buffer; let go of it now, before
                // hyper reads on, and hyper reuses the buffer instead of allocating another.
                drop(request);
                return Answer::Now(Some(response));
            }
            let app = app.clone();
            Answer::Later(Box::pin(async move {
                routes::handle_routed(&app, request, ip, started).await
            }))
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
            drop(permit);
            drop(per_client);
        });
    }
    // Stop accepting, tell the network we leave (so every list drops this node at once
    // instead of after failed probes), drain what is in flight, save what we know.
    drop(listener);
    let _ = stop_network.send(true);
    let _ = network_loop.await;
    tracing::info!(
        connections = graceful.count(),
        "shutting down: leaving the network, draining open connections"
    );
    let drain = async {
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("drain timed out; closing the rest"),
        }
    };
    tokio::join!(node.driver().leave(), drain);
    node.driver().save().await;
}

/// Open connections per client address (an IPv4 address, an IPv6 /64), capped by
/// `--max-connections-per-client`, so one address cannot hold every slot of
/// `--max-connections` with half-sent request heads. Keyed on the TCP peer: a connection
/// carries no forwarding header until its first request head is in, which is exactly
/// what a slowloris never sends, so connections from `--trusted-proxies` are not counted
/// here (the proxy holds everyone's; its own per-client limits apply in front).
#[derive(Debug, Clone)]
struct PerClient {
    cap: u32,
    trusted: TrustedProxies,
    open: Arc<parking_lot::Mutex<HashMap<IpAddr, u32>>>,
}

impl PerClient {
    fn new(cap: u32, trusted: TrustedProxies) -> PerClient {
        PerClient {
            cap: cap.max(1),
            trusted,
            open: Arc::default(),
        }
    }

    /// Counts a new connection from `ip`, or `None` if its address is at the cap. The
    /// guard gives the place back when dropped.
    fn admit(&self, ip: IpAddr) -> Option<ClientConnection> {
        if self.trusted.contains(ip) {
            return Some(ClientConnection { key: None });
        }
        let key = rate_limit_key(ip);
        let mut open = self.open.lock();
        let count = open.entry(key).or_default();
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(ClientConnection {
            key: Some((key, self.clone())),
        })
    }
}

/// One counted connection; dropping it gives its place back.
#[derive(Debug)]
struct ClientConnection {
    key: Option<(IpAddr, PerClient)>,
}

impl Drop for ClientConnection {
    fn drop(&mut self) {
        if let Some((key, per_client)) = self.key.take() {
            let mut open = per_client.open.lock();
            if let Some(count) = open.get_mut(&key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    // Only addresses with open connections are kept: the map stays within
                    // --max-connections entries.
                    open.remove(&key);
                }
            }
        }
    }
}

/// What the service gives hyper for one request: the answer itself when the response memo
/// held it, else the handler still to run.
enum Answer {
    Now(Option<Response<Body>>),
    Later(Pin<Box<dyn Future<Output = Response<Body>> + Send>>),
}

impl Future for Answer {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Answer::Now(response) => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // hyper polls a future no more once it is ready; should anything else, it
                // waits forever rather than answer twice.
                None => Poll::Pending,
            },
            Answer::Later(handler) => handler.as_mut().poll(cx).map(Ok),
        }
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C): the one shutdown path of the binary.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                }
            }
            _ => {
                tracing::warn!("cannot listen for signals; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
