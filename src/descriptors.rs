//! File descriptors: the process's limit, how it is shared between the services of a node
//! so that none can starve another, and what an accept loop does when they run out.
//!
//! Every connection holds a descriptor. Without shares, one service that anyone can open
//! connections to (DNS over TCP) could hold all of them, and the node's HTTP, its probes
//! and its requests to Docker Hub would fail together.

use std::io;
use std::time::Duration;

/// The share of the descriptor limit DNS over TCP may hold, in eighths.
const DNS_TCP_EIGHTHS: u64 = 1;
/// The share HTTP client connections may hold, in eighths. The rest (an eighth) is the
/// reserve for the node's own connections (Docker Hub, probes, gossip, fills), its
/// listeners and files.
const HTTP_EIGHTHS: u64 = 6;
/// DNS over TCP connections at most, however high the limit: resolvers fall back to TCP
/// only for truncated answers, and each connection is short-lived.
pub const MAX_DNS_TCP_CONNECTIONS: usize = 1024;
/// DNS over TCP connections from one network (IPv4 /24, IPv6 /56) at most.
pub const MAX_DNS_TCP_PER_NETWORK: usize = 16;
/// Assumed when the limit cannot be read (no such limit on this system, or unlimited).
const ASSUMED_LIMIT: u64 = 65_536;
/// How long an accept loop waits after an error that is not about one connection (out of
/// descriptors or memory): retrying at once would spin a core and still fail, while the
/// connections already open finish and give theirs back.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// How the descriptor limit is shared out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The soft limit on open descriptors this budget was made for.
    pub limit: u64,
    /// DNS over TCP connections open at once.
    pub dns_tcp: usize,
    /// DNS over TCP connections open at once from one network.
    pub dns_tcp_per_network: usize,
    /// HTTP client connections open at once (`--max-connections` may set fewer).
    pub http: u32,
}

impl Budget {
    /// The shares of `limit` descriptors: an eighth for DNS over TCP (at most
    /// [`MAX_DNS_TCP_CONNECTIONS`], a quarter of that per network and at most
    /// [`MAX_DNS_TCP_PER_NETWORK`]), six eighths for HTTP, an eighth kept back.
    pub fn for_limit(limit: u64) -> Budget {
        let limit = limit.max(16);
        let dns_tcp = usize::try_from(limit * DNS_TCP_EIGHTHS / 8)
            .unwrap_or(usize::MAX)
            .clamp(2, MAX_DNS_TCP_CONNECTIONS);
        Budget {
            limit,
            dns_tcp,
            dns_tcp_per_network: (dns_tcp / 4).clamp(1, MAX_DNS_TCP_PER_NETWORK),
            http: u32::try_from(limit * HTTP_EIGHTHS / 8).unwrap_or(u32::MAX),
        }
    }

    /// The shares of this process's current soft limit.
    pub fn current() -> Budget {
        Budget::for_limit(soft_limit().unwrap_or(ASSUMED_LIMIT))
    }
}

/// The soft limit on open descriptors (`RLIMIT_NOFILE`), if there is a finite one.
#[cfg(unix)]
pub fn soft_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
pub fn soft_limit() -> Option<u64> {
    None
}

/// Raises the soft limit on open descriptors to the hard limit, as Go's runtime does at
/// start: the soft limit (often 1,024) exists for programs that use `select`, which this
/// one does not. Returns the limit in force afterwards.
#[cfg(unix)]
pub fn raise_soft_limit() -> io::Result<Option<u64>> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit)?;
    }
    Ok(getrlimit(Resource::Nofile).current)
}

#[cfg(not(unix))]
pub fn raise_soft_limit() -> io::Result<Option<u64>> {
    Ok(None)
}

/// How long an accept loop should wait before accepting again after `err`: nothing when
/// the error was about one connection (it went away before it was accepted; the next may
/// be waiting), else [`ACCEPT_PAUSE`] (out of descriptors, `EMFILE`/`ENFILE`, or memory).
pub fn accept_pause(err: &io::Error) -> Option<Duration> {
    match err.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionRefused
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock => None,
        _ => Some(ACCEPT_PAUSE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_the_limit_and_keep_a_reserve() {
        let small = Budget::for_limit(256);
        assert_eq!(
            (small.dns_tcp, small.dns_tcp_per_network, small.http),
            (32, 8, 192)
        );
        let usual = Budget::for_limit(1024);
        assert_eq!(
            (usual.dns_tcp, usual.dns_tcp_per_network, usual.http),
            (128, 16, 768)
        );
        let large = Budget::for_limit(1 << 20);
        assert_eq!(large.dns_tcp, MAX_DNS_TCP_CONNECTIONS);
        assert_eq!(large.dns_tcp_per_network, MAX_DNS_TCP_PER_NETWORK);
        for limit in [0, 16, 100, 256, 1024, 65_536, 1 << 20] {
            let b = Budget::for_limit(limit);
            assert!(b.dns_tcp as u64 + u64::from(b.http) < b.limit, "{b:?}");
            assert!(b.dns_tcp_per_network <= b.dns_tcp);
        }
    }

    #[test]
    fn only_errors_about_one_connection_are_retried_at_once() {
        let emfile = io::Error::from_raw_os_error(24);
        assert_eq!(accept_pause(&emfile), Some(ACCEPT_PAUSE));
        let enfile = io::Error::from_raw_os_error(23);
        assert_eq!(accept_pause(&enfile), Some(ACCEPT_PAUSE));
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(accept_pause(&aborted), None);
    }
}
