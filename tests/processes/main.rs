//! The tests that run the node's binary as real processes on loopback addresses (the
//! command line, restarts and saved state, gossip between processes over a lossy proxy, the
//! demo network, pool seeds, DNS over TCP under a small descriptor limit), in one test
//! binary: each binary links the whole crate, so one instead of six saves a link per build
//! for each.

#[path = "../common/mod.rs"]
mod common;

mod demo;
mod dns_tcp;
mod federation_lossy;
mod federation_processes;
mod pool_seed;
mod process;
