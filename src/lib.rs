//! dockerhub-build-status: a federated network of badge servers for Docker Hub images.
//!
//! # Layout
//!
//! The folders are the architecture; a request travels down this list and back up.
//!
//! - [`config`]: command-line flags and environment variables, checked.
//! - [`node`]: the composition root: the node handle every task shares (cache, hub client,
//!   federation driver, metrics, memo).
//! - [`http`]: the HTTP side: the accept loop and its limits ([`http::server::run`]), the one
//!   request parser ([`http::router`]), the handlers per route family, response headers
//!   (ETag, Cache-Control, CORS), the response memo and the front page.
//! - [`badge`]: SVG badges, laid out like shields.io's.
//! - [`cache`]: the status cache and the Docker resources' caches: coalescing,
//!   stale-while-revalidate, stale-if-error, and taking fills before asking Docker Hub.
//! - [`fill`]: fills, the network of nodes as one cache: the asker, the owner, the trust
//!   in suppliers, the verification of fills and the signed wire format.
//! - [`hub`]: Docker Hub: validated names, the client and its upstream budget.
//! - [`federation`]: the pure federation core: descriptors, gossip messages, members and
//!   scores, listing, rendezvous hashing. No I/O, no clock, no async.
//! - [`driver`]: what does I/O for the federation: gossip and probe loops, the transports
//!   (HTTP, and in memory for tests), state, key and `peers.toml` files.
//! - [`dns`]: the pool name's authoritative DNS (hickory-server): the zone's answers from
//!   the nodes this node's probes found healthy, rate limited per source network, and its
//!   own bounded DNS-over-TCP accept loop.
//! - [`descriptors`]: the file descriptor limit, its shares (DNS over TCP, HTTP, a reserve),
//!   and the pause of every accept loop when descriptors run out.
//! - [`metrics`], [`logging`]: the node's Prometheus registry and its log lines.
//! - [`tools`]: the basic tools every folder above uses, each written once: the clock, the
//!   keyed rate limiter, the bounded map.
//! - [`demo`]: the one-command demo network and its sample Docker Hub.
//! - `testkit` (feature `testkit`, for tests and benchmarks): the federation simulator.

// Request handlers and background tasks must not panic on input; tests may unwrap.
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod badge;
pub mod cache;
pub mod config;
pub mod demo;
pub mod descriptors;
pub mod dns;
pub mod driver;
pub mod federation;
pub mod fill;
pub mod http;
pub mod hub;
pub mod logging;
pub mod metrics;
pub mod node;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod tools;
