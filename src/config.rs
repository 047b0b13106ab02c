//! Command-line flags and environment variables (the command line of docs/DESIGN.md),
//! parsed with clap.
//!
//! Everything a node can be told at start lives here, validated once, so the rest of the
//! code works with checked values and a bad flag stops the node with one clear line.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use url::Url;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Which answered requests get a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessLog {
    /// No request lines (`/metrics` still counts every request).
    Off,
    /// 4xx and 5xx answers, and answers that took 400 ms or longer.
    Errors,
    /// Every request.
    All,
}

impl AccessLog {
    /// Whether an answer with `status` that took `took` gets a line.
    pub fn wants(self, status: u16, took: Duration) -> bool {
        match self {
            AccessLog::Off => false,
            AccessLog::All => true,
            AccessLog::Errors => status >= 400 || took >= SLOW_ANSWER,
        }
    }
}

/// Whether a cache miss asks the resource's owner among the listed nodes before Docker Hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fill {
    /// Ask the owner first, so the network fetches each resource once.
    On,
    /// Ask Docker Hub directly, as a node alone does (the network benchmark's baseline).
    Off,
}

/// An answer that took this long is slow, and gets a line with `--access-log errors`: it is
/// the delay after which status.js asks another node, so a browser waiting this long for us
/// has already turned elsewhere. A cached badge takes well under a millisecond; a cold one
/// waits for Docker Hub.
pub const SLOW_ANSWER: Duration = Duration::from_millis(400);

/// A value that must never reach a log: `Debug` shows only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

/// What to run instead of a node.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run a demo network on loopback: a sample Docker Hub and three nodes that find each
    /// other. Needs no Docker Hub access.
    Demo {
        /// Port of the first node; the others take the next two. 0 picks free ports.
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
}

/// The node's configuration: every flag also reads the environment variable shown in `--help`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "dockerhub-build-status",
    version,
    about = "A badge server for Docker Hub build status, one node of a federated network."
)]
pub struct Config {
    /// Without a command, the node runs.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address and port to listen on.
    #[arg(long, env = "DBS_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// The URL other nodes and browsers reach this node at [default: http://LISTEN, the --listen address].
    #[arg(long, env = "DBS_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<Url>,

    /// The peers file: nodes to join at start [default: peers.toml in the working directory,
    /// if there is one].
    #[arg(long, env = "DBS_PEERS")]
    pub peers: Option<PathBuf>,

    /// Where the node keeps its key pair and what it knows of the network.
    #[arg(long, env = "DBS_STATE_DIR", default_value = "state")]
    pub state_dir: PathBuf,

    /// Docker Hub's API origin (point it at a test hub or a mirror).
    #[arg(long, env = "DBS_HUB_URL", default_value = "https://hub.docker.com", value_parser = parse_http_url)]
    pub hub_url: Url,

    /// Docker Hub user name, for a higher rate limit (with --hub-token).
    #[arg(long, env = "DBS_HUB_USERNAME", requires = "hub_token")]
    pub hub_username: Option<String>,

    /// Docker Hub personal access token (with --hub-username). Never logged.
    #[arg(
        long,
        env = "DBS_HUB_TOKEN",
        requires = "hub_username",
        hide_env_values = true
    )]
    pub hub_token: Option<Secret>,

    /// How long a status from Docker Hub counts as fresh.
    #[arg(long, env = "DBS_CACHE_TTL", default_value = "5m", value_parser = parse_duration)]
    pub cache_ttl: Duration,

    /// How long past its freshness a status may still be served while Docker Hub fails.
    #[arg(long, env = "DBS_MAX_STALE", default_value = "24h", value_parser = parse_duration)]
    pub max_stale: Duration,

    /// The most statuses kept in the cache.
    #[arg(long, env = "DBS_CACHE_CAPACITY", default_value_t = 100_000, allow_negative_numbers = true, value_parser = parse_u64::<1, 100_000_000>)]
    pub cache_capacity: u64,

    /// How often to gossip with a few random known nodes.
    #[arg(long, env = "DBS_GOSSIP_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub gossip_interval: Duration,

    /// How often to probe the known nodes' /health.
    #[arg(long, env = "DBS_PROBE_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub probe_interval: Duration,

    /// Allow peers on loopback and private addresses (local clusters and tests only).
    #[arg(long, env = "DBS_ALLOW_PRIVATE_PEERS")]
    pub allow_private_peers: bool,

    /// Log format.
    #[arg(long, env = "DBS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Which requests get a log line.
    #[arg(long, env = "DBS_ACCESS_LOG", value_enum, default_value_t = AccessLog::Errors)]
    pub access_log: AccessLog,

    /// Time a client has to send its request headers, from connecting or from its previous
    /// answer, before the connection is closed (so also how long idle connections stay open).
    #[arg(long, env = "DBS_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// The most open client connections; further ones are closed at once.
    #[arg(long, env = "DBS_MAX_CONNECTIONS", default_value_t = 10_000, allow_negative_numbers = true, value_parser = parse_u32::<1, 1_000_000>)]
    pub max_connections: u32,

    /// The most open connections from one client address (an IPv4 address, an IPv6 /64),
    /// and never more than half of --max-connections; further ones are closed at once.
    /// Connections from --trusted-proxies are counted only against --max-connections.
    #[arg(long, env = "DBS_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections_per_client: u32,
    /// Reverse proxies in front of the node (comma-separated addresses or CIDR blocks):
    /// only from these is the client address taken from X-Forwarded-For or Forwarded.
    #[arg(long, env = "DBS_TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::http::client_addr::parse_cidr)]
    pub trusted_proxies: Vec<crate::http::client_addr::Cidr>,
    /// Timeout of one request to Docker Hub.
    #[arg(long, env = "DBS_HUB_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub hub_timeout: Duration,

    /// The most requests to Docker Hub in flight at once.
    #[arg(long, env = "DBS_HUB_CONCURRENCY", default_value_t = 8, allow_negative_numbers = true, value_parser = parse_u32::<1, 1000>)]
    pub hub_concurrency: u32,

    /// The most requests to Docker Hub per minute (Docker Hub allows about 180 anonymous).
    #[arg(long, env = "DBS_HUB_RATE", default_value_t = 120, allow_negative_numbers = true, value_parser = parse_u32::<1, 100_000>)]
    pub hub_rate: u32,

    /// The source address of every request to Docker Hub, an address of this host (for a
    /// host with several; Docker Hub counts its limit per address) [default: the system's
    /// choice].
    #[arg(long, env = "DBS_HUB_SOURCE_ADDRESS")]
    pub hub_source_address: Option<IpAddr>,

    /// Whether a cache miss asks the resource's owner among the listed nodes before Docker
    /// Hub; `off` turns filling from other nodes' caches off.
    #[arg(long, env = "DBS_FILL", value_enum, default_value_t = Fill::On)]
    pub fill: Fill,

    /// The pool name (e.g. pool.badges.example.org): this node serves the pool's badges and
    /// says so in its signed descriptor, with its --pool-address (docs/POOL.md).
    #[arg(long, env = "DBS_DNS_ZONE")]
    pub dns_zone: Option<String>,

    /// Answer DNS for --dns-zone on this address, UDP and TCP (port 53 in a real pool).
    #[arg(long, env = "DBS_DNS_LISTEN", requires = "dns_zone")]
    pub dns_listen: Option<SocketAddr>,

    /// TTL of the pool name's address records: how long a resolver may keep giving out a
    /// node that just died.
    #[arg(long, env = "DBS_DNS_TTL", default_value = "60s", value_parser = parse_duration)]
    pub dns_ttl: Duration,

    /// The pool's name servers, for the zone's NS and SOA records (comma-separated names).
    #[arg(
        long,
        env = "DBS_DNS_NAMESERVERS",
        value_delimiter = ',',
        requires = "dns_zone"
    )]
    pub dns_nameservers: Vec<String>,

    /// DNS answers per second to one source network (IPv4 /24, IPv6 /56) over UDP, after a
    /// burst of twice as many; past it queries are dropped or answered truncated.
    #[arg(long, env = "DBS_DNS_RATE_LIMIT", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub dns_rate_limit: u32,

    /// The addresses this node serves the pool's badges on, plain HTTP (comma-separated)
    /// [default: the public URL's host, if it is an address].
    #[arg(
        long,
        env = "DBS_POOL_ADDRESS",
        value_delimiter = ',',
        requires = "dns_zone"
    )]
    pub pool_address: Vec<IpAddr>,

    /// The port the pool's plain HTTP is served on at every pool address: where clients of
    /// the pool name connect, and where a DNS node probes each pool address, its own
    /// included, before answering with it.
    #[arg(long, env = "DBS_POOL_PORT", default_value_t = 80, value_parser = clap::value_parser!(u16).range(1..))]
    pub pool_port: u16,
}

impl Config {
    /// The URL this node announces: `--public-url`, or `http://` + the listen address.
    pub fn public_url(&self) -> Result<Url, String> {
        match &self.public_url {
            Some(url) => Ok(url.clone()),
            None => {
                // A wildcard listen address is not reachable as such; name loopback instead so
                // the default at least works for a local node.
                let mut addr = self.listen;
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                Url::parse(&format!("http://{addr}"))
                    .map_err(|e| format!("cannot form a public URL: {e}"))
            }
        }
    }

    /// Checks what clap cannot check flag by flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.cache_ttl.is_zero() {
            return Err("--cache-ttl must be longer than 0s".into());
        }
        for (name, interval) in [
            ("--gossip-interval", self.gossip_interval),
            ("--probe-interval", self.probe_interval),
        ] {
            if interval < Duration::from_millis(10) {
                return Err(format!("{name} must be at least 10ms"));
            }
        }
        if self.hub_timeout < Duration::from_millis(10) {
            return Err("--hub-timeout must be at least 10ms".into());
        }
        if self.header_timeout < Duration::from_millis(10) {
            return Err("--header-timeout must be at least 10ms".into());
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&self.dns_ttl)
            || self.dns_ttl.subsec_nanos() != 0
        {
            return Err("--dns-ttl must be whole seconds from 1s to 24h".into());
        }
        if let Some(zone) = &self.dns_zone {
            crate::dns::zone::Zone::new(zone, 1, &self.dns_nameservers, 1, false)
                .map_err(|e| e.to_string())?;
        }
        self.pool_addresses()?;
        if let Some(ip) = self.hub_source_address {
            check_source_address(ip)?;
        }
        Ok(())
    }

    /// The addresses this node serves the pool on: `--pool-address`, or else the public
    /// URL's host when it is an IP address; none without `--dns-zone`.
    pub fn pool_addresses(&self) -> Result<Vec<IpAddr>, String> {
        if self.dns_zone.is_none() {
            return Ok(Vec::new());
        }
        let addresses = if self.pool_address.is_empty() {
            let url = self.public_url()?;
            match url.host() {
                Some(url::Host::Ipv4(v4)) => vec![IpAddr::V4(v4)],
                Some(url::Host::Ipv6(v6)) => vec![IpAddr::V6(v6)],
                _ => {
                    return Err(
                        "--dns-zone needs --pool-address when the public URL's host is a name"
                            .into(),
                    );
                }
            }
        } else {
            self.pool_address
                .iter()
                .map(|ip| crate::federation::address::canonical_ip(*ip))
                .collect()
        };
        let max = crate::federation::descriptor::MAX_POOL_ADDRESSES;
        if addresses.len() > max {
            return Err(format!("--pool-address takes at most {max} addresses"));
        }
        for (i, ip) in addresses.iter().enumerate() {
            if ip.is_unspecified() || ip.is_multicast() || addresses[..i].contains(ip) {
                return Err(format!(
                    "--pool-address: {ip} is unspecified, multicast or given twice"
                ));
            }
        }
        Ok(addresses)
    }

    /// The peers file to read, if any: `--peers`, or `peers.toml` when the working directory
    /// has one. A file named on the command line must exist; the default may be absent.
    pub fn peers_file(&self) -> Option<PathBuf> {
        match &self.peers {
            Some(path) => Some(path.clone()),
            None => {
                let default = PathBuf::from("peers.toml");
                default.is_file().then_some(default)
            }
        }
    }

    /// A configuration for tests, benchmarks and the demo: every default, listening on
    /// loopback, with a fresh private directory holding an empty `peers.toml` and the state,
    /// so nothing is read from or written to the working directory.
    pub fn for_tests(hub_url: Url) -> Config {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let mut config = Config::parse_from(["dockerhub-build-status"]);
        let dir = std::env::temp_dir().join(format!(
            "dockerhub-build-status-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        // Best effort: a missing file shows up as a clear error when the node starts.
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join("peers.toml"), "");
        config.peers = Some(dir.join("peers.toml"));
        config.state_dir = dir.join("state");
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.hub_url = hub_url;
        config.allow_private_peers = true;
        config
    }
}

/// Checks that requests can go out from `ip`: a unicast address this host has. Binding a
/// socket to it is the one check that agrees with what connecting will do later.
pub fn check_source_address(ip: IpAddr) -> Result<(), String> {
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(format!(
            "--hub-source-address: {ip} is not one address (leave the flag out to let the system choose)"
        ));
    }
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0))
        .map(drop)
        .map_err(|e| format!("--hub-source-address: {ip} is not an address of this host ({e})"))
}

/// Parses durations written like `200ms`, `30s`, `5m`, `24h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e} (write durations like 200ms, 30s, 5m or 24h)"))
}

/// Parses a count from `min` to `max`. Negative numbers reach it too
/// (`allow_negative_numbers`), so `-1` is told the valid range instead of being taken for
/// an unknown flag.
fn parse_count(text: &str, min: u64, max: u64) -> Result<u64, String> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{text} is not a whole number from {min} to {max}"))
}

/// A `u64` flag: a whole number from `MIN` to `MAX`.
pub fn parse_u64<const MIN: u64, const MAX: u64>(text: &str) -> Result<u64, String> {
    parse_count(text, MIN, MAX)
}

/// A `u32` flag: a whole number from `MIN` to `MAX`.
pub fn parse_u32<const MIN: u32, const MAX: u32>(text: &str) -> Result<u32, String> {
    let n = parse_count(text, u64::from(MIN), u64::from(MAX))?;
    u32::try_from(n).map_err(|_| format!("{text} is not a whole number from {MIN} to {MAX}"))
}

/// Parses an absolute `http` or `https` URL without credentials.
pub fn parse_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => {
            crate::federation::peer_url::UrlError::NoScheme(text.trim().to_owned()).to_string()
        }
        other => other.to_string(),
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "only http and https URLs are allowed, not {}:",
            url.scheme()
        ));
    }
    if url.host().is_none() {
        return Err("the URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL must not carry a user name or password".into());
    }
    Ok(url)
}

/// Parses `--public-url` by the rules other nodes hold a node's URL to (no query, no
/// fragment, http or https), so a URL the network would refuse is a bad flag like any other.
pub fn parse_public_url(text: &str) -> Result<Url, String> {
    crate::federation::PeerUrl::parse(text).map_err(|e| e.to_string())?;
    parse_http_url(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_documented_forms() {
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5s").is_err());
    }

    #[test]
    fn counts_name_their_range() {
        assert_eq!(parse_u32::<1, 1000>("8"), Ok(8));
        assert_eq!(parse_u64::<1, 100_000_000>("100000000"), Ok(100_000_000));
        for bad in ["-1", "0", "1001", "many", ""] {
            let err = parse_u32::<1, 1000>(bad).unwrap_err();
            assert!(err.contains("whole number from 1 to 1000"), "{bad}: {err}");
        }
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(parse_http_url("https://hub.docker.com").is_ok());
        assert!(parse_http_url("ftp://example.org").is_err());
        assert!(parse_http_url("javascript:alert(1)").is_err());
        assert!(parse_http_url("https://user:pw@example.org").is_err());
    }

    #[test]
    fn defaults_match_the_design() {
        let config = Config::parse_from(["x"]);
        assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(
            config.public_url().unwrap().as_str(),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(config.cache_ttl, Duration::from_secs(300));
        assert_eq!(config.max_stale, Duration::from_secs(86_400));
        assert_eq!(config.cache_capacity, 100_000);
        assert_eq!(config.gossip_interval, Duration::from_secs(10));
        assert_eq!(config.probe_interval, Duration::from_secs(30));
        assert!(!config.allow_private_peers);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.dns_ttl, Duration::from_secs(60));
        assert_eq!(config.dns_listen, None);
        assert_eq!(config.dns_rate_limit, 50);
        assert_eq!(config.pool_addresses(), Ok(Vec::new()));
        assert_eq!(config.access_log, AccessLog::Errors);
        assert_eq!(config.hub_source_address, None);
        assert_eq!(config.fill, Fill::On);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn pool_flags() {
        let parse = |args: &[&str]| {
            let mut all = vec!["x"];
            all.extend_from_slice(args);
            Config::try_parse_from(all)
        };
        // The pool address defaults to the public URL's host when it is an address.
        let c = parse(&[
            "--dns-zone",
            "pool.example.org",
            "--public-url",
            "http://192.0.2.7",
        ])
        .unwrap();
        assert_eq!(c.pool_addresses(), Ok(vec!["192.0.2.7".parse().unwrap()]));
        let c = parse(&[
            "--dns-zone",
            "pool.example.org",
            "--public-url",
            "http://[2001:db8::7]:80",
        ])
        .unwrap();
        assert_eq!(c.pool_addresses(), Ok(vec!["2001:db8::7".parse().unwrap()]));
        let c = parse(&[
            "--dns-zone",
            "pool.example.org",
            "--public-url",
            "https://a.example",
        ])
        .unwrap();
        assert!(c.validate().unwrap_err().contains("--pool-address"));
        let c = parse(&[
            "--dns-zone",
            "pool.example.org",
            "--public-url",
            "https://a.example",
            "--pool-address",
            "192.0.2.7,::ffff:192.0.2.8",
            "--dns-nameservers",
            "ns1.example.org,ns2.example.org",
            "--dns-listen",
            "0.0.0.0:53",
            "--dns-ttl",
            "30s",
        ])
        .unwrap();
        assert!(c.validate().is_ok());
        assert_eq!(
            c.pool_addresses(),
            Ok(vec![
                "192.0.2.7".parse().unwrap(),
                "192.0.2.8".parse().unwrap()
            ])
        );
        assert_eq!(c.dns_nameservers, ["ns1.example.org", "ns2.example.org"]);
        // Flags that make no sense without a zone, and bad values.
        assert!(parse(&["--dns-listen", "127.0.0.1:53"]).is_err());
        assert!(parse(&["--pool-address", "192.0.2.7"]).is_err());
        assert!(parse(&["--dns-zone", "p.example", "--pool-address", "nope"]).is_err());
        for bad in [
            vec!["--dns-zone", "p..example"],
            vec!["--dns-zone", "p.example", "--dns-ttl", "0s"],
            vec!["--dns-zone", "p.example", "--dns-ttl", "1500ms"],
            vec!["--dns-zone", "p.example", "--dns-nameservers", "a..b"],
            vec![
                "--dns-zone",
                "p.example",
                "--pool-address",
                "192.0.2.1,192.0.2.1",
            ],
            vec!["--dns-zone", "p.example", "--pool-address", "0.0.0.0"],
        ] {
            let c = parse(&bad).unwrap();
            assert!(c.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn access_log_modes_pick_their_requests() {
        let fast = Duration::from_micros(300);
        let slow = SLOW_ANSWER;
        let just_under = SLOW_ANSWER - Duration::from_micros(1);
        for (mode, status, took, wanted) in [
            (AccessLog::Off, 500, slow, false),
            (AccessLog::All, 200, fast, true),
            (AccessLog::Errors, 200, fast, false),
            (AccessLog::Errors, 304, just_under, false),
            (AccessLog::Errors, 200, slow, true),
            (AccessLog::Errors, 404, fast, true),
            (AccessLog::Errors, 429, fast, true),
            (AccessLog::Errors, 503, fast, true),
        ] {
            assert_eq!(
                mode.wants(status, took),
                wanted,
                "{mode:?} {status} {took:?}"
            );
        }
        let parsed = |args: &[&str]| Config::try_parse_from(args).map(|c| c.access_log);
        assert_eq!(
            parsed(&["x", "--access-log", "all"]).unwrap(),
            AccessLog::All
        );
        assert_eq!(
            parsed(&["x", "--access-log", "off"]).unwrap(),
            AccessLog::Off
        );
        assert!(parsed(&["x", "--access-log", "some"]).is_err());
    }

    #[test]
    fn fill_is_on_or_off() {
        let parsed = |args: &[&str]| Config::try_parse_from(args).map(|c| c.fill);
        assert_eq!(parsed(&["x", "--fill", "off"]).unwrap(), Fill::Off);
        assert_eq!(parsed(&["x", "--fill", "on"]).unwrap(), Fill::On);
        assert!(parsed(&["x", "--fill", "maybe"]).is_err());
    }

    #[test]
    fn the_hub_source_address_must_be_one_of_this_hosts() {
        let parse = |value: &str| Config::try_parse_from(["x", "--hub-source-address", value]);
        assert!(parse("nope").is_err());
        assert!(parse("127.0.0.1:80").is_err());
        // Every address of 127.0.0.0/8 is this host's on Linux; 127.0.0.1 is everywhere.
        let local = parse("127.0.0.1").unwrap();
        assert_eq!(local.hub_source_address, Some("127.0.0.1".parse().unwrap()));
        assert!(local.validate().is_ok());
        // TEST-NET-1 is never assigned to a host.
        let err = parse("192.0.2.1").unwrap().validate().unwrap_err();
        assert!(
            err.contains("--hub-source-address") && err.contains("192.0.2.1"),
            "{err}"
        );
        assert!(err.contains("not an address of this host"), "{err}");
        for wildcard in ["0.0.0.0", "::", "224.0.0.1"] {
            let err = parse(wildcard).unwrap().validate().unwrap_err();
            assert!(err.contains("not one address"), "{wildcard}: {err}");
        }
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let config =
            Config::try_parse_from(["x", "--hub-token", "dckr_pat_s3cret", "--hub-username", "u"])
                .unwrap();
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(config.hub_token.unwrap().expose(), "dckr_pat_s3cret");
    }

    #[test]
    fn a_token_needs_a_user_name() {
        assert!(Config::try_parse_from(["x", "--hub-token", "secret"]).is_err());
        assert!(Config::try_parse_from(["x", "--hub-token", "t", "--hub-username", "u"]).is_ok());
    }
}
