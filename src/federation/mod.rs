//! Federation: nodes find each other by gossiping signed self-descriptors, and each decides
//! who is healthy from its own probes.
//!
//! The core ([`core::Core`]) is sans-IO: plain synchronous code that takes messages, the
//! time and a random number generator as arguments and returns what to send. Async drivers
//! (probe loop, gossip loop, `POST /gossip`) run it over a [`transport::Transport`]; tests
//! and the benchmark run thousands of cores in one process over [`memory::MemoryNetwork`]
//! in virtual time ([`sim::Simulation`]). The protocol is written up in `docs/GOSSIP.md`.
//!
//! # Layout
//!
//! - [`peers`]: `peers.toml`, parsed and validated.
//! - [`identity`]: the node's ed25519 key pair in the state directory.
//! - [`descriptor`]: signed self-descriptors, their canonical bytes and their verification.
//! - [`message`], [`digest`]: the `/gossip` messages, their limits, and the set digest.
//! - [`core`]: the state machine: members, merging, probes and scores, listing, leave.
//! - [`score`], [`ratelimit`], [`net`]: NTP-pool scores, per-source token buckets, and
//!   the address policy (which IPs may be probed, how addresses group).
//! - [`store`]: atomic persistence of the core's state.
//! - [`transport`], [`memory`], [`sim`]: the transport trait and exchange loop, the
//!   in-memory network, the simulator.
//! - [`config`], [`key`], [`peer_url`], [`time`]: settings and value types.

pub mod config;
pub mod core;
pub mod descriptor;
pub mod digest;
mod fsutil;
pub mod identity;
pub mod key;
pub mod memory;
pub mod message;
pub mod net;
pub mod peer_url;
pub mod peers;
pub mod ratelimit;
pub mod score;
pub mod sim;
pub mod store;
pub mod time;
pub mod transport;

pub use self::config::{Config, ConfigError};
pub use self::core::{
    Action, AdmittedGossip, Core, GossipError, MemberCounts, MemberState, MemberView, MergeError,
    MergeOutcome, ProbeOutcome, ProbeVerdict, RestoreReport, ServerView, SignatureChecks, State,
    Stats,
};
pub use self::descriptor::{
    Descriptor, DescriptorError, SignatureCache, SignedDescriptor, VerifiedDescriptor,
};
pub use self::identity::{Identity, IdentityError};
pub use self::key::PublicKey;
pub use self::message::{GossipRequest, GossipResponse, MAX_GOSSIP_BODY_BYTES};
pub use self::net::is_forbidden_probe_target;
pub use self::peer_url::{PeerUrl, UrlError};
pub use self::peers::{Peer, PeersError, PeersFileError, load_peers, parse_peers};
pub use self::store::{Loaded, StoreError, load_state, save_state, state_path};
pub use self::time::Timestamp;
pub use self::transport::{ExchangeError, Transport, TransportError, exchange};
