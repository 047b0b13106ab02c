//! Unit tests of the core: two or three cores handing messages to each other by hand.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::super::descriptor::{Descriptor, SignedDescriptor};
use super::super::identity::Identity;
use super::super::message::{Entry, GossipRequest, GossipResponse, MAX_DESCRIPTORS_PER_MESSAGE};
use super::super::peer_url::PeerUrl;
use super::super::peers::Peer;
use super::super::time::Timestamp;
use super::*;

const T0: Timestamp = Timestamp::from_unix_ms(1_800_000_000_000);

fn at(secs: u64) -> Timestamp {
    T0.saturating_add(Duration::from_secs(secs))
}

fn url(i: usize) -> PeerUrl {
    PeerUrl::parse(&format!("https://n{i}.test.example")).expect("url")
}

fn ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(11, 0, i as u8, 1))
}

fn identity(i: usize) -> Identity {
    Identity::from_seed([i as u8 + 1; 32])
}

fn seed(i: usize) -> Peer {
    Peer {
        url: url(i),
        weight: None,
        key: None,
        line: 1,
    }
}

fn config(i: usize) -> Settings {
    let mut config = Settings::new(url(i), "0.3.0");
    config.gossip_interval = Duration::from_secs(10);
    config.probe_interval = Duration::from_secs(10);
    config.probe_timeout = Duration::from_secs(2);
    config
}

fn core(i: usize, seeds: &[usize]) -> Core {
    core_with(i, seeds, |_| {})
}

fn core_with(i: usize, seeds: &[usize], f: impl FnOnce(&mut Settings)) -> Core {
    let mut c = config(i);
    f(&mut c);
    Core::new(identity(i), c, seeds.iter().map(|&s| seed(s)).collect(), T0).expect("core")
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

/// A descriptor of node `i` (identity `i`) at `url`, issued at `t`.
fn descriptor(i: usize, url: &PeerUrl, t: Timestamp, leaving: bool) -> SignedDescriptor {
    Descriptor {
        url: url.clone(),
        key: identity(i).public_key(),
        version: "0.3.0".into(),
        weight: 1.0,
        issued_at: t,
        leaving,
        pool: Vec::new(),
    }
    .sign(&identity(i))
    .expect("sign")
    .to_signed()
}

/// Runs a whole exchange started by `a` with `b`; returns the round trips.
fn exchange(a: &mut Core, b: &mut Core, a_ip: IpAddr, now: Timestamp) -> usize {
    let mut request = GossipRequest::Digest {
        v: PROTOCOL_VERSION,
        buckets: a.digest(),
    };
    let mut trips = 0;
    loop {
        trips += 1;
        let response = b.handle_gossip(request, a_ip, now).expect("answer");
        match a
            .handle_gossip_response(b.url(), response, now, &mut rng())
            .expect("valid answer")
        {
            Some(next) => request = next,
            None => return trips,
        }
    }
}

fn healthy(core: &Core) -> ProbeOutcome {
    ProbeOutcome::healthy(core.public_key(), Duration::from_millis(30), Some(ip(9)))
}

/// Feeds `n` probe results for `url` to `core`.
fn probes(core: &mut Core, url: &PeerUrl, outcome: &ProbeOutcome, n: usize) {
    for k in 0..n {
        core.on_probe_result(url, outcome.clone(), at(k as u64));
    }
}

/// What must not change when a descriptor or message is refused.
fn fingerprint(core: &mut Core) -> (State, SetDigest, Vec<MemberView>) {
    (core.snapshot(), core.digest(), core.members(T0))
}

mod eviction;
mod gossip;
mod pool;
mod pool_seeds;
mod probes;
mod restarts;
