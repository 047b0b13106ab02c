//! The integration tests that run nodes inside the test process (the HTTP API, the status
//! cache end to end, the pool name's DNS server over real sockets, the rendezvous test vectors, the hub's limit per source address), in
//! one test binary: each binary links the whole crate, so one binary instead of several
//! saves a link per build for each.

#[path = "../common/mod.rs"]
mod common;

mod abuse;
mod api;
mod cache;
mod connections;
mod deadline;
mod dns;
mod docker;
mod fill;
mod hub_down;
mod rendezvous_vectors;
mod replay;
mod source_limit;
