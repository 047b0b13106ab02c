//! Resolving the name of a pool named in `peers.toml`: through the system resolver
//! (`/etc/hosts`, `resolv.conf`, as every other name this node looks up), or, when the
//! entry gives a `nameserver`, by asking that DNS server directly with hickory-resolver,
//! the client of the family whose server answers the pool's own DNS. Each round asks
//! afresh: a pool's answers are a new draw of healthy nodes every time.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::Resolver;
use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

use crate::federation::PoolSeed;

/// Why a pool's name gave no address to ask. The text is what the once-per-cause warning
/// says, so it names the cause and nothing that changes between attempts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The name exists nowhere, or has no A or AAAA records.
    #[error("resolves to no address")]
    NoAddress,
    #[error("no answer from the resolver in time")]
    Timeout,
    #[error("cannot resolve: {0}")]
    Failed(String),
}

/// The addresses `pool`'s name resolves to now, in the order answered, within `timeout`.
pub async fn resolve_pool(pool: &PoolSeed, timeout: Duration) -> Result<Vec<IpAddr>, ResolveError> {
    let lookup = async {
        match pool.nameserver {
            Some(server) => ask_nameserver(&pool.name, server, timeout).await,
            None => ask_system(&pool.name, pool.port).await,
        }
    };
    let addresses = tokio::time::timeout(timeout, lookup)
        .await
        .map_err(|_| ResolveError::Timeout)??;
    if addresses.is_empty() {
        return Err(ResolveError::NoAddress);
    }
    Ok(addresses)
}

/// getaddrinfo, off the async threads (tokio runs it on its blocking pool).
async fn ask_system(name: &str, port: u16) -> Result<Vec<IpAddr>, ResolveError> {
    match tokio::net::lookup_host((name, port)).await {
        Ok(addresses) => Ok(addresses.map(|a| a.ip()).collect()),
        // glibc says "Name or service not known" (EAI_NONAME) and "No address associated
        // with hostname" (EAI_NODATA) for what DNS calls NXDOMAIN and NODATA.
        Err(err) if is_no_such_name(&err) => Err(ResolveError::NoAddress),
        Err(err) => Err(ResolveError::Failed(err.to_string())),
    }
}

fn is_no_such_name(err: &std::io::Error) -> bool {
    let text = err.to_string();
    text.contains("not known") || text.contains("No address associated")
}

/// One question (A and AAAA) to `server`, over UDP and, if an answer is truncated, TCP;
/// no hosts file, no cache, no search domains: exactly what that server answers now.
async fn ask_nameserver(
    name: &str,
    server: SocketAddr,
    timeout: Duration,
) -> Result<Vec<IpAddr>, ResolveError> {
    let mut config = NameServerConfig::udp_and_tcp(server.ip());
    for connection in &mut config.connections {
        connection.port = server.port();
    }
    let mut builder = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![config]),
        TokioRuntimeProvider::default(),
    );
    let options = builder.options_mut();
    options.timeout = timeout;
    options.attempts = 1;
    options.cache_size = 0;
    options.use_hosts_file = ResolveHosts::Never;
    options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    let resolver = builder
        .build()
        .map_err(|err| ResolveError::Failed(err.to_string()))?;
    // Fully qualified: no search domain is tried first.
    match resolver.lookup_ip(format!("{name}.")).await {
        Ok(lookup) => Ok(lookup.iter().collect()),
        Err(err) if err.is_no_records_found() => Err(ResolveError::NoAddress),
        Err(hickory_resolver::net::NetError::Timeout) => Err(ResolveError::Timeout),
        Err(err) => Err(ResolveError::Failed(err.to_string())),
    }
}
