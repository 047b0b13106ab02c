//! DNS over TCP, with the bounds hickory-server's own TCP listener lacks: a cap on open
//! connections in all and per source network, a rate limit on queries per network, and an
//! accept loop that pauses when descriptors run out instead of retrying at once.
//!
//! hickory's `Server::register_listener` accepts every connection it can and, on an
//! accept error such as "too many open files", retries at once: a few hundred idle
//! connections more than the descriptor limit took every descriptor of the node (its HTTP
//! with them) and spun a core. Each connection here is served as hickory serves one (its
//! framing stream, idle timeout and response handle), and the query goes to the same
//! [`PoolHandler`] as over UDP.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::runtime::iocompat::AsyncIoTokioAsStd;
use hickory_server::net::tcp::TcpStream;
use hickory_server::net::xfer::{DnsStreamHandle as _, Protocol};
use hickory_server::proto::op::{Header, MessageType, Metadata, ResponseCode, SerialMessage};
use hickory_server::proto::serialize::binary::{BinDecodable as _, BinDecoder, BinEncodable as _};
use hickory_server::server::{Request, RequestHandler as _, ResponseHandle, TimeoutStream};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::handler::PoolHandler;
use super::ratelimit::{ResponseLimiter, Verdict};
use crate::federation::address::subnet_of;
use crate::logging::WarnThrottle;
use crate::metrics::Metrics;
use crate::tools::clock;

/// Responses queued per connection before the handler waits for the client to read.
const RESPONSE_BUFFER: usize = 64;

/// How many DNS-over-TCP connections may be open, and how fast their queries may come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpLimits {
    /// Open connections in all; further ones are closed as soon as they are accepted.
    pub connections: usize,
    /// Open connections from one source network (IPv4 /24, IPv6 /56).
    pub per_network: usize,
    /// Queries per second per source network after a burst of twice as many; a connection
    /// whose network is past it is closed.
    pub rate: u32,
    /// Queries per second over all TCP connections together, after a burst of twice as
    /// many.
    pub global_rate: u32,
    /// A connection that sends no query for this long is closed.
    pub idle_timeout: Duration,
}

/// Open connections, in all and per network. A place is given back when its guard drops.
#[derive(Debug)]
struct Places {
    limits: TcpLimits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One open connection's place in [`Places`].
#[derive(Debug)]
struct Place {
    places: Arc<Places>,
    network: IpAddr,
}

impl Places {
    /// A place for a connection from `ip`, or `None` at either cap.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Place> {
        let network = subnet_of(ip);
        let mut open = self.open.lock();
        let (total, per_network) = &mut *open;
        let in_network = per_network.get(&network).copied().unwrap_or(0);
        if *total >= self.limits.connections || in_network >= self.limits.per_network {
            return None;
        }
        *total += 1;
        per_network.insert(network, in_network + 1);
        Some(Place {
            places: Arc::clone(self),
            network,
        })
    }

    fn open(&self) -> usize {
        self.open.lock().0
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.places.open.lock();
        let (total, per_network) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(count) = per_network.get_mut(&self.network) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                // Only networks with open connections are kept: the map stays within the
                // connection cap.
                per_network.remove(&self.network);
            }
        }
    }
}

/// The running accept loop; aborting it closes every connection it serves.
#[derive(Debug)]
pub struct TcpServer {
    task: JoinHandle<()>,
    places: Arc<Places>,
}

impl TcpServer {
    /// Serves DNS over TCP on `listener` with `handler`, within `limits`.
    pub fn start(
        listener: TcpListener,
        handler: PoolHandler,
        limits: TcpLimits,
        max_networks: usize,
        metrics: Metrics,
    ) -> TcpServer {
        let places = Arc::new(Places {
            limits,
            open: Mutex::new((0, HashMap::new())),
        });
        let limiter = Arc::new(Mutex::new(
            ResponseLimiter::new(limits.rate, limits.rate.saturating_mul(2), 0, max_networks)
                .with_global(limits.global_rate, limits.global_rate.saturating_mul(2)),
        ));
        let task = tokio::spawn(accept_loop(
            listener,
            handler,
            Arc::clone(&places),
            limiter,
            metrics,
        ));
        TcpServer { task, places }
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.places.open()
    }

    /// Stops accepting and closes the open connections.
    pub async fn shutdown(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    handler: PoolHandler,
    places: Arc<Places>,
    limiter: Arc<Mutex<ResponseLimiter>>,
    metrics: Metrics,
) {
    let warned = WarnThrottle::new(Duration::from_secs(60));
    // Dropped with this task (when it is aborted), and so are the connections.
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                if let Some(pause) = crate::descriptors::accept_pause(&err) {
                    if warned.allow("accept") {
                        tracing::warn!(error = %err, "DNS over TCP: accept failed; pausing (said at most once a minute)");
                    }
                    tokio::time::sleep(pause).await;
                }
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let Some(place) = places.admit(peer.ip()) else {
            // A reset rather than an orderly close: nothing lingers on this side.
            let _ = stream.set_zero_linger();
            drop(stream);
            metrics.dns_rate_limited("tcp_refused");
            continue;
        };
        connections.spawn(serve(
            stream,
            peer,
            handler.clone(),
            Arc::clone(&limiter),
            place,
            metrics.clone(),
        ));
    }
}

/// Serves one connection as hickory-server does (length-prefixed messages, answered in
/// order, closed after `idle_timeout` without a query), with the query rate limit.
async fn serve(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    handler: PoolHandler,
    limiter: Arc<Mutex<ResponseLimiter>>,
    place: Place,
    metrics: Metrics,
) {
    let idle = place.places.limits.idle_timeout;
    let (messages, responses) =
        TcpStream::from_stream_with_buffer_size(AsyncIoTokioAsStd(stream), peer, RESPONSE_BUFFER);
    let mut messages = TimeoutStream::new(messages, idle);
    while let Some(message) = messages.next().await {
        let Ok(message) = message else {
            return;
        };
        if limiter.lock().check(peer.ip(), clock::now()) != Verdict::Answer {
            metrics.dns_rate_limited("tcp_closed");
            return;
        }
        let (bytes, src) = message.into_parts();
        let respond = ResponseHandle::new(src, responses.with_remote_addr(src), Protocol::Tcp);
        match Request::from_bytes(bytes.clone(), src, Protocol::Tcp) {
            Ok(request) if request.metadata.message_type == MessageType::Query => {
                handler
                    .handle_request::<_, TokioTime>(&request, respond)
                    .await;
            }
            // Responses posing as queries get nothing, as hickory does.
            Ok(_) => {}
            Err(_) => {
                // As hickory: a bare FORMERR header when the header can be read, else
                // nothing (and the connection goes on; the framing is intact).
                if let Some(header) = formerr_for(&bytes)
                    && responses
                        .with_remote_addr(src)
                        .send(SerialMessage::new(header, src))
                        .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// A bare FORMERR header answering `query`'s header, if it has one.
fn formerr_for(query: &[u8]) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(query)).ok()?;
    let mut metadata = Metadata::response_from_request(&header.metadata);
    metadata.response_code = ResponseCode::FormErr;
    let answer = Header {
        metadata,
        counts: Default::default(),
    };
    answer.to_bytes().ok()
}
