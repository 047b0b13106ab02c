//! The basic tools every other part of the node uses, each written once, and importing
//! nothing else of this crate (so any folder may use them without a loop):
//!
//! - [`clock`]: the node's one monotonic clock (tokio's, which paused-time tests drive), the
//!   wall clock as a [`clock::Timestamp`], and the one conversion to whole milliseconds.
//! - [`limiter`]: token buckets, one per key, in a table of bounded size: every per-source
//!   rate limit (gossip, DNS answers, DNS over TCP, fill requests).
//! - [`bounded`]: a map that keeps at most so many entries and forgets the oldest first
//!   (signature checks, forgotten members, nonces, repositories without build history).

pub mod bounded;
pub mod clock;
pub mod limiter;
