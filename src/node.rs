//! The node handle: everything a request handler or background task needs, behind one
//! `Arc`, so tasks share it by cloning a pointer.

use std::sync::Arc;

use thiserror::Error;
use url::Url;

use crate::cache::resources::{DockerCaches, StatusUpstream};
use crate::cache::{CacheSettings, StatusCache};
use crate::config::{Config, Fill};
use crate::driver::{Driver, DriverError};
use crate::fill::Fills;
use crate::hub::health::{HubHealth, HubHealthCollector};
use crate::hub::{HubClient, HubSettings};
use crate::metrics::Metrics;
use crate::tools::clock::{self, Instant};

/// Why a node could not be set up. Each names the problem in one line for `main`.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot set up the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("cannot set up the metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Federation(#[from] DriverError),
}

/// One badge node. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    public_url: Url,
    /// The public URL in the federation's canonical spelling (no trailing slash), as
    /// `/health`, `/servers` and status.js's hashing use it.
    canonical_url: String,
    driver: Arc<Driver>,
    fills: Arc<Fills>,
    cache: StatusCache<StatusUpstream>,
    docker: DockerCaches,
    metrics: Metrics,
    hub_health: Arc<HubHealth>,
    started: Instant,
}

impl Node {
    /// Sets up a node from checked flags: the hub client, the cache and the metrics.
    pub fn new(config: Config) -> Result<Node, StartError> {
        config.validate().map_err(StartError::Config)?;
        let public_url = config.public_url().map_err(StartError::Config)?;
        let canonical_url = crate::federation::PeerUrl::parse(public_url.as_str())
            .map_err(|e| StartError::Config(format!("--public-url: {e}")))?
            .to_string();
        let metrics = Metrics::new()?;
        let hub = Arc::new(HubClient::new(
            HubSettings {
                base: config.hub_url.clone(),
                timeout: config.hub_timeout,
                concurrency: config.hub_concurrency,
                rate_per_minute: config.hub_rate,
                credentials: config
                    .hub_username
                    .clone()
                    .zip(config.hub_token.as_ref().map(|t| t.expose().to_owned())),
                source_address: config.hub_source_address,
                check_reserve: config.fill == Fill::On,
            },
            metrics.clone(),
        )?);
        metrics.register(Box::new(HubHealthCollector::new(Arc::clone(hub.health()))?))?;
        let hub_health = Arc::clone(hub.health());
        let settings = CacheSettings {
            ttl: config.cache_ttl,
            max_stale: config.max_stale,
            capacity: usize::try_from(config.cache_capacity).unwrap_or(usize::MAX),
        };
        let driver = Arc::new(Driver::new(&config, &public_url, metrics.clone())?);
        let fills = Arc::new(Fills::new(
            config.fill == Fill::On,
            Arc::clone(&driver),
            metrics.clone(),
        ));
        let filler = fills.filler();
        let docker = DockerCaches::new(&hub, settings, &metrics).filled_by(&filler);
        let upstream = StatusUpstream::new(hub, docker.repository.clone());
        let cache = StatusCache::new(upstream, settings, metrics.clone()).filled_by(filler);
        // A node that loses this node's trust loses every entry it supplied, everywhere.
        fills.on_distrust(cache.purger());
        for purge in docker.purgers() {
            fills.on_distrust(purge);
        }
        Ok(Node {
            inner: Arc::new(Inner {
                public_url,
                canonical_url,
                driver,
                fills,
                config,
                cache,
                docker,
                metrics,
                hub_health,
                started: clock::now(),
            }),
        })
    }

    /// The flags the node was started with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The URL this node announces.
    pub fn public_url(&self) -> &Url {
        &self.inner.public_url
    }

    /// The public URL as the network spells it (no trailing slash).
    pub fn canonical_url(&self) -> &str {
        &self.inner.canonical_url
    }

    /// This node's part in the federation.
    pub fn driver(&self) -> &Arc<Driver> {
        &self.inner.driver
    }

    /// The fill side: asking owners, answering other nodes' fills.
    pub fn fills(&self) -> &Arc<Fills> {
        &self.inner.fills
    }

    /// The status cache in front of Docker Hub.
    pub fn cache(&self) -> &StatusCache<StatusUpstream> {
        &self.inner.cache
    }

    /// The caches of the Docker badges' resources (repository, tag list, tag).
    pub fn docker(&self) -> &DockerCaches {
        &self.inner.docker
    }

    /// The node's metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Whether Docker Hub answers this node.
    pub fn hub_health(&self) -> &HubHealth {
        &self.inner.hub_health
    }

    /// When the node started.
    pub fn started(&self) -> Instant {
        self.inner.started
    }
}
