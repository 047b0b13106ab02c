//! The integration tests that run nodes inside the test process (the HTTP API, the status
//! cache end to end, the rendezvous test vectors), in one test binary: each binary links the
//! whole crate, so one binary instead of three saves two links per build.

#[path = "../common/mod.rs"]
mod common;

mod abuse;
mod api;
mod cache;
mod docker;
mod fill;
mod rendezvous_vectors;
