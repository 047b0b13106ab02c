//! The federation's I/O: what drives the pure core in [`crate::federation`] over real
//! sockets and files.
//!
//! - [`loops`]: the node's federation driver: the tick loop that runs the core's gossip
//!   exchanges and probes as tasks, the server side of `POST /gossip`, saving and leaving.
//! - [`transport`]: how nodes reach each other: the trait and the exchange loop, over HTTP
//!   ([`transport::http`]) or in memory ([`transport::memory`], tests and the simulator).
//! - [`state`], [`key_file`], [`peers_file`]: the files in the state directory and
//!   `peers.toml`.

pub(crate) mod fsutil;
pub mod key_file;
pub mod loops;
pub mod peers_file;
pub mod state;
pub mod transport;

pub use self::loops::{Driver, DriverError};
