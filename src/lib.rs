//! dockerhub-build-status: a federated network of badge servers for Docker Hub images.
//!
//! # Layout
//!
//! - [`config`]: command-line flags and environment variables.
//! - [`server`]: the accept loop, connection limits and graceful shutdown; [`server::run`].
//! - [`routes`]: the HTTP API, one handler per route, and how errors become responses.
//! - [`memo`]: finished badge and JSON answers by request target, while they stay the same.
//! - [`pages`]: the HTML front page.
//! - [`node`]: the node handle shared by every task (configuration, cache, metrics).
//! - [`names`]: validated Docker Hub names and tags.
//! - [`hub`]: the Docker Hub client and its upstream budget.
//! - [`cache`]: the status cache (coalescing, stale-while-revalidate, stale-if-error).
//! - [`badge`]: SVG badges, measured like shields.io's.
//! - [`rendezvous`]: the rendezvous hashing that status.js uses to pick nodes.
//! - [`federation`]: the sans-IO federation core: descriptors, gossip, scores, limits.
//! - [`network`]: the async drivers of the federation (gossip and probe loops, `/gossip`).
//! - [`peer_client`]: the HTTP client for other nodes, with the private-address guard.
//! - [`metrics`]: the node's Prometheus registry.
//! - [`logging`]: text and JSON log lines, with a fast formatter for the per-request line.
//! - [`source`]: the source archive served at `/source`.
//! - [`demo`]: the one-command demo network.
//! - [`fakehub`]: a stand-in for Docker Hub with the real API's shapes (demo and tests).

// Request handlers and background tasks must not panic on input; tests may unwrap.
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod badge;
pub mod cache;
pub mod config;
pub mod demo;
pub mod fakehub;
pub mod federation;
pub mod hub;
pub mod logging;
pub mod memo;
pub mod metrics;
pub mod names;
pub mod network;
pub mod node;
pub mod pages;
pub mod peer_client;
pub mod rendezvous;
pub mod routes;
pub mod server;
pub mod source;
