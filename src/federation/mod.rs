//! Federation: nodes find each other by gossiping signed self-descriptors, and each decides
//! who is healthy from its own probes.
//!
//! This folder is the pure core, in the way of a sans-IO protocol crate: plain synchronous
//! code that takes messages, the time and a random number generator as arguments and
//! returns what to send. It opens no socket and no file, reads no clock and knows nothing
//! of HTTP; the async drivers in [`crate::driver`] run it over real transports, and the
//! simulator (`testkit::sim`) runs thousands of cores in one process in virtual time, through
//! the same exchange steps ([`exchange`]). The protocol is written up in `docs/GOSSIP.md`.
//!
//! # Layout
//!
//! - [`core`]: the state machine: members, merging, probes and scores, listing, snapshot.
//! - [`exchange`]: one gossip exchange step each side runs, signature checks included.
//! - Wire formats: [`descriptor`] (signed self-descriptors), [`message`] and [`digest`]
//!   (the `/gossip` messages and the set digest), [`key`], [`peer_url`], [`peers`]
//!   (`peers.toml`'s text), [`identity`] (the node's key pair). The signed requests and
//!   answers by which nodes fill each other's caches are the fill feature's own
//!   (`fill::wire`), beside the rest of it.
//! - Policy: [`score`] (NTP-pool scores), [`address`] (which IPs may be probed, how
//!   addresses group, per address or network for rate limits), [`settings`].
//! - [`rendezvous`]: the weighted rendezvous hashing that status.js uses to pick nodes.
//! - [`time`]: timestamps, passed in by the caller.

pub mod address;
pub mod core;
pub mod descriptor;
pub mod digest;
pub mod exchange;
pub mod identity;
pub mod key;
pub mod message;
pub mod peer_url;
pub mod peers;
pub mod rendezvous;
pub mod score;
pub mod settings;
pub mod time;

pub use self::address::is_forbidden_probe_target;
pub use self::core::{
    Action, AdmittedGossip, Core, GossipError, MemberCounts, MemberState, MemberView, MergeError,
    MergeOutcome, PROBE_RETRIES, PoolNode, ProbeOutcome, ProbeVerdict, RestoreReport, ServerView,
    SignatureChecks, State, Stats,
};
pub use self::descriptor::{
    Descriptor, DescriptorError, SignatureCache, SignedDescriptor, VerifiedDescriptor,
};
pub use self::identity::{Identity, RandomError};
pub use self::key::PublicKey;
pub use self::message::{GossipRequest, GossipResponse, MAX_GOSSIP_BODY_BYTES};
pub use self::peer_url::{PeerUrl, UrlError};
pub use self::peers::{Peer, PeersError, PeersFile, PoolScheme, PoolSeed, parse_peers};
pub use self::settings::{Settings, SettingsError};
pub use self::time::Timestamp;
