//! The pool name's DNS: a node started with `--dns-listen` answers the `--dns-zone` name
//! with the addresses of up to four healthy pool nodes, so a README badge that names the
//! pool survives the loss of any one node (docs/POOL.md).
//!
//! # Layout
//!
//! - [`zone`]: the answers as a pure function of the question, the nodes this node's own
//!   probes found healthy, and a random source.
//! - [`ratelimit`]: response rate limiting per source network, time passed in.
//! - [`handler`]: the hickory-server glue (the `RequestHandler`), metrics.
//! - [`tcp`]: DNS over TCP, accepted within caps on connections and queries.
//! - This file: binding UDP and TCP, the refresh of the live pool view, shutdown.
//!
//! The DNS engine is hickory-server's: it reads and writes every packet (UDP through its
//! `Server`, TCP through its stream types in [`tcp`]'s own accept loop); this module only
//! decides what goes in the answer and how much is answered.

pub mod handler;
pub mod ratelimit;
pub mod tcp;
pub mod zone;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

use self::handler::{PoolHandler, PoolView};
use self::ratelimit::ResponseLimiter;
use self::tcp::{TcpLimits, TcpServer};
use self::zone::Zone;
use crate::driver::Driver;
use crate::federation::PoolNode;
use crate::metrics::Metrics;

/// How often the answers' node list is read again from the federation core: one core
/// lock per refresh instead of one per query, and a node whose probe failed leaves the
/// answers within this much of its failed probe.
pub const REFRESH_EVERY: Duration = Duration::from_millis(250);
/// A TCP client that sends nothing for this long is disconnected.
pub const TCP_TIMEOUT: Duration = Duration::from_secs(5);
/// Networks the rate limiter tracks at once (about 100 bytes each).
pub const MAX_LIMITED_NETWORKS: usize = 65_536;
/// Of the queries over a network's limit, every second gets a truncated answer.
pub const SLIP: u32 = 2;
/// All answers of one transport together are limited to this many times the rate of one
/// network: forged sources spread over many networks (each within its own limit) cannot
/// make the node send more than that. At the default of 50 a second, 2,000 answers a
/// second, about 260 KB/s of UDP answers at most.
pub const GLOBAL_RATE_FACTOR: u32 = 40;

/// Where the nodes to answer with come from: the federation core in a node, a fixed list
/// in tests and benchmarks.
pub trait PoolSource: Send + Sync + 'static {
    fn pool_nodes(&self) -> Vec<PoolNode>;
}

impl PoolSource for Driver {
    fn pool_nodes(&self) -> Vec<PoolNode> {
        Driver::pool_nodes(self)
    }
}

/// A fixed list of nodes.
#[derive(Debug, Clone)]
pub struct StaticPool(pub Vec<PoolNode>);

impl PoolSource for StaticPool {
    fn pool_nodes(&self) -> Vec<PoolNode> {
        self.0.clone()
    }
}

/// How the DNS server limits responses.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Responses per second per source network over UDP, after a burst of twice as many
    /// (and queries per second per network over TCP); all networks together get
    /// [`GLOBAL_RATE_FACTOR`] times as many.
    pub rate: u32,
    /// Open TCP connections, in all and per network.
    pub tcp_connections: usize,
    pub tcp_connections_per_network: usize,
}

impl Limits {
    /// `rate` a second per network, and TCP connections within this process's share of
    /// descriptors for DNS ([`crate::descriptors::Budget`]).
    pub fn new(rate: u32) -> Limits {
        let budget = crate::descriptors::Budget::current();
        Limits {
            rate,
            tcp_connections: budget.dns_tcp,
            tcp_connections_per_network: budget.dns_tcp_per_network,
        }
    }

    fn global_rate(&self) -> u32 {
        self.rate.saturating_mul(GLOBAL_RATE_FACTOR)
    }
}

/// The UDP socket and TCP listener, bound on one address and port.
#[derive(Debug)]
pub struct Sockets {
    udp: UdpSocket,
    tcp: TcpListener,
}

impl Sockets {
    /// Binds UDP and TCP on `addr`. With port 0 the TCP listener takes the port UDP got,
    /// and another port is tried when that one is taken for TCP.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Sockets> {
        let mut tries = if addr.port() == 0 { 16 } else { 1 };
        loop {
            let udp = UdpSocket::bind(addr).await?;
            let port = udp.local_addr()?.port();
            match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
                Ok(tcp) => return Ok(Sockets { udp, tcp }),
                Err(err) if tries <= 1 => return Err(err),
                Err(_) => tries -= 1,
            }
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }
}

/// A running DNS server. Dropping it without [`DnsServer::shutdown`] leaves its tasks
/// running until the runtime ends.
pub struct DnsServer {
    server: hickory_server::Server<PoolHandler>,
    tcp: TcpServer,
    refresher: JoinHandle<()>,
    local: SocketAddr,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Serves `zone` on `sockets` with the nodes `source` gives, read again every
    /// [`REFRESH_EVERY`].
    pub fn start(
        sockets: Sockets,
        zone: Zone,
        source: Arc<dyn PoolSource>,
        limits: Limits,
        metrics: Metrics,
    ) -> std::io::Result<DnsServer> {
        let local = sockets.local_addr()?;
        let view = Arc::new(RwLock::new(Arc::new(PoolView::new(
            source.pool_nodes(),
            &metrics,
        ))));
        let refresher = {
            let view = Arc::clone(&view);
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(REFRESH_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    let nodes = source.pool_nodes();
                    // Series are looked up only when the list changed.
                    if view.read().nodes != nodes {
                        *view.write() = Arc::new(PoolView::new(nodes, &metrics));
                    }
                }
            })
        };
        let limiter = ResponseLimiter::new(
            limits.rate,
            limits.rate.saturating_mul(2),
            SLIP,
            MAX_LIMITED_NETWORKS,
        )
        .with_global(limits.global_rate(), limits.global_rate().saturating_mul(2));
        let handler = PoolHandler::new(zone, view, limiter, metrics.clone());
        let tcp = TcpServer::start(
            sockets.tcp,
            handler.clone(),
            TcpLimits {
                connections: limits.tcp_connections,
                per_network: limits.tcp_connections_per_network,
                rate: limits.rate,
                global_rate: limits.global_rate(),
                idle_timeout: TCP_TIMEOUT,
            },
            MAX_LIMITED_NETWORKS,
            metrics,
        );
        let mut server = hickory_server::Server::new(handler);
        server.register_socket(sockets.udp);
        Ok(DnsServer {
            server,
            tcp,
            refresher,
            local,
        })
    }

    /// The address UDP and TCP are served on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// DNS-over-TCP connections open now.
    pub fn tcp_connections(&self) -> usize {
        self.tcp.open_connections()
    }

    /// Stops answering and waits for the server's tasks to end.
    pub async fn shutdown(mut self) {
        self.refresher.abort();
        self.tcp.shutdown().await;
        if let Err(err) = self.server.shutdown_gracefully().await {
            tracing::debug!(error = %err, "DNS server ended with an error");
        }
    }
}
