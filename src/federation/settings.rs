//! Tunables of the federation core, with the defaults a public node runs with.

use std::time::Duration;

use super::descriptor::{Descriptor, Freshness};
use super::key::PublicKey;
use super::peer_url::PeerUrl;
use super::time::Timestamp;

/// Settings of one node's federation core. [`Settings::new`] gives the defaults; the driver
/// fills in what the command line says.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// This node's public base URL (`--public-url`).
    pub public_url: PeerUrl,
    /// Software version announced in the descriptor.
    pub version: String,
    /// This node's capacity hint.
    pub weight: f64,
    /// The addresses this node serves the DNS pool's badges on (`--pool-address`), signed
    /// into its descriptor; empty when it does not serve the pool.
    pub pool_addresses: Vec<std::net::IpAddr>,
    /// The port every pool node serves the pool's plain HTTP on, at each of its pool
    /// addresses (`--pool-port`, 80): where clients of the pool name connect, and so where
    /// this node probes the pool addresses, its own included.
    pub pool_port: u16,
    /// This node answers DNS for the pool (`--dns-listen`): only then does it probe pool
    /// addresses (its own and other nodes'), which only its answers need.
    pub answers_pool_dns: bool,
    /// Time between gossip rounds (`--gossip-interval`).
    pub gossip_interval: Duration,
    /// Time between probes of each known node (`--probe-interval`).
    pub probe_interval: Duration,
    /// A probe answered later than this counts as failed.
    pub probe_timeout: Duration,
    /// Nodes contacted per gossip round.
    pub fanout: usize,
    /// Most nodes known at once (self not counted).
    pub max_members: usize,
    /// Most listed nodes behind one public IP address.
    pub max_listed_per_ip: usize,
    /// Most listed nodes in one public /24 (IPv6: /56), as `address::subnet_of` groups.
    pub max_listed_per_subnet: usize,
    /// Local clusters and tests: allow loopback and private addresses as peers
    /// (`--allow-private-peers`).
    pub allow_private_peers: bool,
    /// A node re-issues its descriptor this often even when nothing changed, so that it
    /// never reaches `descriptor_max_age` while the node lives.
    pub refresh_interval: Duration,
    /// Descriptors older than this are dropped: a node that vanished without a leave is
    /// forgotten by everyone this long after its last refresh.
    pub descriptor_max_age: Duration,
    /// How far ahead of this node's clock a descriptor may be issued.
    pub max_clock_skew: Duration,
    /// Gossip requests a source address may send at once.
    pub gossip_burst: u32,
    /// Gossip requests a source address may send per `gossip_interval` in the long run.
    pub gossip_requests_per_interval: u32,
    /// Source addresses tracked by the rate limiter.
    pub max_rate_limited_sources: usize,
    /// Chance per round of one extra exchange with a node whose probes fail, so that the
    /// two sides of a healed partition find each other before probes recover.
    pub failing_gossip_probability: f64,
}

/// A setting that can't work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid own descriptor: {0}")]
    Descriptor(#[from] super::descriptor::DescriptorError),
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    #[error("probe timeout must be shorter than the probe interval")]
    ProbeTimeout,
    #[error("the refresh interval must be shorter than half the descriptor max age")]
    Refresh,
    #[error("failing_gossip_probability must be within 0..=1")]
    Probability,
}

impl Settings {
    /// Defaults: gossip every 10 s with 3 nodes, probe every 30 s with a 5 s timeout, at most
    /// 1024 known nodes, 2 listed per IP and 4 per /24, refresh every 6 h, forget after 24 h.
    pub fn new(public_url: PeerUrl, version: impl Into<String>) -> Self {
        Self {
            public_url,
            version: version.into(),
            weight: 1.0,
            pool_port: 80,
            answers_pool_dns: false,
            pool_addresses: Vec::new(),
            gossip_interval: Duration::from_secs(10),
            probe_interval: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(5),
            fanout: 3,
            max_members: 1024,
            max_listed_per_ip: 2,
            max_listed_per_subnet: 4,
            allow_private_peers: false,
            refresh_interval: Duration::from_secs(6 * 3600),
            descriptor_max_age: Duration::from_secs(24 * 3600),
            max_clock_skew: Duration::from_secs(300),
            gossip_burst: 60,
            gossip_requests_per_interval: 30,
            max_rate_limited_sources: 4096,
            failing_gossip_probability: 0.1,
        }
    }

    /// Checks that the settings fit together and that the node's own descriptor would pass
    /// every other node's checks.
    pub fn validate(&self) -> Result<(), SettingsError> {
        for (name, zero) in [
            ("gossip_interval", self.gossip_interval.is_zero()),
            ("probe_interval", self.probe_interval.is_zero()),
            ("probe_timeout", self.probe_timeout.is_zero()),
            ("fanout", self.fanout == 0),
            ("max_members", self.max_members == 0),
            ("max_listed_per_ip", self.max_listed_per_ip == 0),
            ("max_listed_per_subnet", self.max_listed_per_subnet == 0),
            ("refresh_interval", self.refresh_interval.is_zero()),
            ("gossip_burst", self.gossip_burst == 0),
            (
                "gossip_requests_per_interval",
                self.gossip_requests_per_interval == 0,
            ),
            (
                "max_rate_limited_sources",
                self.max_rate_limited_sources == 0,
            ),
        ] {
            if zero {
                return Err(SettingsError::Zero(name));
            }
        }
        if self.probe_timeout >= self.probe_interval {
            return Err(SettingsError::ProbeTimeout);
        }
        if self.refresh_interval.saturating_mul(2) > self.descriptor_max_age {
            return Err(SettingsError::Refresh);
        }
        if !(0.0..=1.0).contains(&self.failing_gossip_probability) {
            return Err(SettingsError::Probability);
        }
        Descriptor {
            url: self.public_url.clone(),
            key: PublicKey::from_bytes([0; 32]),
            version: self.version.clone(),
            weight: self.weight,
            issued_at: Timestamp::default(),
            leaving: false,
            pool: self.pool_addresses.clone(),
        }
        .validate()?;
        Ok(())
    }

    pub(crate) fn freshness(&self) -> Freshness {
        Freshness {
            max_clock_skew: self.max_clock_skew,
            max_age: self.descriptor_max_age,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Settings {
        Settings::new(PeerUrl::parse("https://a.example").expect("url"), "0.3.0")
    }

    #[test]
    fn defaults_are_valid_and_bad_settings_are_named() {
        assert_eq!(config().validate(), Ok(()));
        let mut c = config();
        c.fanout = 0;
        assert_eq!(c.validate(), Err(SettingsError::Zero("fanout")));
        let mut c = config();
        c.probe_timeout = c.probe_interval;
        assert_eq!(c.validate(), Err(SettingsError::ProbeTimeout));
        let mut c = config();
        c.weight = 0.0;
        assert!(matches!(c.validate(), Err(SettingsError::Descriptor(_))));
        let mut c = config();
        c.version = "not a version".into();
        assert!(matches!(c.validate(), Err(SettingsError::Descriptor(_))));
        let mut c = config();
        c.refresh_interval = c.descriptor_max_age;
        assert_eq!(c.validate(), Err(SettingsError::Refresh));
    }
}
