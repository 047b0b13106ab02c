//! The federation's I/O: what drives the pure core in [`crate::federation`] over real
//! sockets and files.
//!
//! - [`loops`]: the node's federation driver: the tick loop that runs the core's gossip
//!   exchanges and probes as tasks, the server side of `POST /gossip`, saving and leaving.
//! - [`transport`]: how nodes reach each other: the trait and the exchange loop, over HTTP
//!   ([`transport::http`]) or in memory (`transport::memory`, tests and the simulator).
//! - [`state`], [`key_file`], [`peers_file`]: the files in the state directory and
//!   `peers.toml`.
//! - [`pool_dns`]: resolving the pools `peers.toml` names, whose addresses are asked as
//!   seeds.

pub(crate) mod fsutil;
pub mod key_file;
pub mod loops;
pub mod peers_file;
pub mod pool_dns;
pub mod state;
pub mod transport;

pub use self::loops::{Driver, DriverError};

/// The system clock as the core's [`Timestamp`](crate::federation::Timestamp): the core
/// reads no clock itself, its drivers pass this in.
pub use crate::tools::clock::wall as now;
