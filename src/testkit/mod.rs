//! Test doubles that tests and benchmarks share, kept out of the node's build: compiled
//! for this crate's own tests and with the `testkit` feature, which the integration tests
//! and benchmarks turn on.
//!
//! - [`sim`]: the deterministic federation simulator (many cores on an in-memory network
//!   in virtual time), driving the very exchange steps a node runs.

pub mod sim;
