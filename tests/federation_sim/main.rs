//! Simulations of the federation: many cores on the in-memory network, virtual time,
//! seeded randomness, so every run is the same run. Conditions are awaited with a round
//! limit, never with sleeps. `health`: the lossy-network goals, in the same binary.

mod health;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dockerhub_build_status::driver::transport::memory::{MemoryNetwork, Wire};
use dockerhub_build_status::driver::transport::{
    ExchangeError, Transport, TransportError, exchange,
};
use dockerhub_build_status::federation::descriptor::Descriptor;
use dockerhub_build_status::federation::message::MAX_DESCRIPTORS_PER_MESSAGE;
use dockerhub_build_status::federation::peers::Peer;
use dockerhub_build_status::federation::{
    Action, Core, GossipError, GossipRequest, Identity, MergeError, PeerUrl, Settings,
    SignedDescriptor, State, Timestamp,
};
use dockerhub_build_status::testkit::sim::{SIM_EPOCH, Seeding, Simulation};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};

/// The convergence goal: every node holds every descriptor within 2·log2(N)+4 rounds.
fn goal(n: usize) -> u64 {
    (2.0 * (n as f64).log2() + 4.0).floor() as u64
}

/// Rounds a node learned by gossip needs to be listed: 14 good probes from a score of 0,
/// plus a round to be heard of and a round of slack.
const LISTING_ROUNDS: u64 = 14 + 2;

fn converge_and_list(sim: &mut Simulation) -> (u64, u64) {
    let n = sim.len();
    let rounds = sim
        .run_until(goal(n), Simulation::converged)
        .unwrap_or_else(|| panic!("{n} nodes did not converge within {} rounds", goal(n)));
    let listed = sim
        .run_until(LISTING_ROUNDS + 2, Simulation::all_listed)
        .unwrap_or_else(|| panic!("{n} nodes did not all list each other"));
    (rounds, rounds + listed)
}

#[test]
fn ten_nodes_converge_and_list_each_other() {
    let mut sim = Simulation::new(10, Seeding::First, 1);
    let (rounds, _) = converge_and_list(&mut sim);
    assert!(rounds >= 1, "convergence can't be free");
    // Everyone's /servers holds all ten, each once.
    let servers = sim.with_core(3, |c| c.servers(sim.now())).expect("node");
    assert_eq!(servers.len(), 10);
}

#[test]
fn a_hundred_nodes_converge_from_one_seed_each() {
    for seeding in [Seeding::First, Seeding::RandomEarlier] {
        let mut sim = Simulation::new(100, seeding, 2);
        converge_and_list(&mut sim);
    }
}

#[test]
fn a_thousand_nodes_converge_from_one_seed_each() {
    let mut sim = Simulation::new(1000, Seeding::First, 3);
    // Values instead of JSON: the join phase moves half a gigabyte of JSON at this size,
    // which the smaller tests and the benchmark already put through the codec.
    sim.net().set_wire(Wire::Direct);
    let rounds = sim.run_until(goal(1000), Simulation::converged);
    assert!(
        rounds.is_some(),
        "1000 nodes did not converge within {} rounds",
        goal(1000)
    );
    let members = sim.with_core(999, |c| c.member_count()).expect("node");
    assert_eq!(members, 999);
}

/// Listing all of a thousand nodes takes 14 good probes of each of a million pairs: some
/// 15 million probe results, seconds in a release build but minutes in a debug build.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "15 million probe results; run with `cargo test --release --test federation_sim`"
)]
fn a_thousand_nodes_list_each_other() {
    let mut sim = Simulation::new(1000, Seeding::First, 3);
    sim.net().set_wire(Wire::Direct);
    converge_and_list(&mut sim);
    let servers = sim
        .with_core(500, |c| c.servers(sim.now()).len())
        .expect("node");
    assert_eq!(servers, 1000);
}

#[test]
fn quiet_exchanges_stay_under_a_kilobyte() {
    let mut sim = Simulation::new(100, Seeding::RandomEarlier, 4);
    converge_and_list(&mut sim);
    sim.net().reset_traffic();
    for _ in 0..5 {
        sim.round();
    }
    let traffic = sim.net().traffic();
    assert!(traffic.exchanges >= 5 * 100 * 2, "{traffic:?}");
    let per_exchange = traffic.bytes / traffic.exchanges;
    assert!(per_exchange < 1024, "{per_exchange} bytes per exchange");
    assert_eq!(
        traffic.round_trips, traffic.exchanges,
        "nothing changed: one round trip each"
    );
}

#[test]
fn runs_are_deterministic() {
    let run = |seed| {
        let mut sim = Simulation::new(30, Seeding::RandomEarlier, seed);
        let rounds = sim.run_until(40, Simulation::converged);
        for _ in 0..3 {
            sim.round();
        }
        let snapshot = sim.with_core(7, |c| c.snapshot()).expect("node");
        (rounds, sim.net().traffic(), snapshot)
    };
    let first = run(5);
    assert_eq!(first, run(5));
    assert_ne!(first.1, run(6).1, "another seed, another run");
}

#[test]
fn lost_messages_only_slow_convergence_down() {
    let mut sim = Simulation::new(100, Seeding::First, 7);
    sim.net().set_drop_probability(0.3);
    let rounds = sim.run_until(60, Simulation::converged);
    assert!(rounds.is_some(), "did not converge with 30% loss");
    assert!(sim.net().traffic().failed > 0);
}

#[test]
fn a_partition_heals() {
    let n = 40;
    let mut sim = Simulation::new(n, Seeding::RandomEarlier, 8);
    converge_and_list(&mut sim);
    let (a, b): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| i < n / 2);
    let urls = |side: &[usize]| {
        side.iter()
            .map(|&i| Simulation::node_url(i))
            .collect::<Vec<_>>()
    };
    sim.net().partition(&[urls(&a), urls(&b)]);
    for _ in 0..6 {
        sim.round();
    }
    // Each side has dropped the other from its lists, and kept its own.
    assert_eq!(sim.listed_by(0), n / 2 - 1);
    assert_eq!(sim.listed_by(n - 1), n / 2 - 1);
    // Meanwhile side B changes: a node re-weights (down: a weight above 1 would count as 1
    // until listed for a day, federation::bounded_weight), a node joins through side B.
    let now = sim.now();
    sim.with_core(n - 1, |c| c.set_weight(0.5, now))
        .expect("node")
        .expect("weight");
    let joined = sim.add_node(&[n - 2]);
    let mut side_b = urls(&b);
    side_b.push(sim.node(joined).url.clone());
    sim.net().partition(&[urls(&a), side_b]);
    sim.run_until(10, Simulation::converged);
    assert!(!sim.converged(), "side A can't know side B's news yet");
    sim.net().heal_all();
    let healed = sim.run_until(30, Simulation::converged);
    assert!(
        healed.is_some(),
        "descriptors did not reconverge after the partition healed"
    );
    let listed = sim.run_until(60, Simulation::all_listed);
    assert!(
        listed.is_some(),
        "lists did not recover after the partition healed"
    );
    let weight = sim
        .with_core(0, |c| c.servers(sim.now()))
        .expect("node")
        .into_iter()
        .find(|s| s.url == sim.node(n - 1).url.as_str())
        .map(|s| s.weight);
    assert_eq!(weight, Some(0.5));
}

#[test]
fn a_leave_propagates_at_once() {
    let mut sim = Simulation::new(20, Seeding::First, 9);
    converge_and_list(&mut sim);
    assert_eq!(sim.listed_by(5), 19);
    sim.leave(5);
    // Pushed to everyone directly: no round needed.
    assert_eq!(sim.listed_by(5), 0);
    assert!(sim.converged(), "everyone holds the leave");
    // With half the pushes lost, gossip carries the leave to the rest.
    sim.net().set_drop_probability(0.5);
    sim.leave(6);
    sim.net().set_drop_probability(0.0);
    let rounds = sim
        .run_until(goal(20), Simulation::converged)
        .expect("leave spread");
    assert_eq!(sim.listed_by(6), 0, "after {rounds} rounds");
}

#[test]
fn a_crashed_node_drops_out_after_two_failed_probes_and_returns_with_its_key() {
    let mut sim = Simulation::new(20, Seeding::First, 10);
    converge_and_list(&mut sim);
    for _ in 0..40 {
        sim.round();
    }
    let key = sim.node(7).key;
    sim.crash(7);
    sim.round();
    assert_eq!(
        sim.listed_by(7),
        19,
        "one failed probe from a high score keeps it listed"
    );
    sim.round();
    assert_eq!(sim.listed_by(7), 0, "two failed probes: gone everywhere");
    // It restarts with an empty peers.toml and finds the network from its saved state.
    sim.set_peers(7, &[]);
    sim.restart(7);
    assert_eq!(sim.node(7).key, key);
    let back = sim.run_until(12, |s| s.listed_by(7) == 19);
    assert!(back.is_some(), "the restarted node was not listed again");
    let lists = sim
        .with_core(7, |c| c.listed_keys(sim.now()).len())
        .expect("node");
    assert!(
        lists > 0,
        "the restarted node rejoined from its saved state"
    );
    assert_eq!(
        sim.with_core(7, |c| c.public_key()).expect("node"),
        key,
        "same key after the restart"
    );
}

#[test]
fn replayed_and_old_descriptors_are_refused_everywhere() {
    let mut sim = Simulation::new(10, Seeding::First, 11);
    converge_and_list(&mut sim);
    let old = sim
        .with_core(3, |c| c.own_descriptor().to_signed())
        .expect("node");
    let now = sim.now();
    sim.with_core(3, |c| c.set_weight(3.0, now))
        .expect("node")
        .expect("weight");
    sim.run_until(goal(10), Simulation::converged)
        .expect("new weight spread");
    let current = sim
        .with_core(3, |c| c.own_descriptor().to_signed())
        .expect("node");
    let mut forged = current.clone();
    forged.weight = 50.0;
    forged.issued_at += 1;
    let attacker = IpAddr::V4(Ipv4Addr::new(13, 0, 0, 1));
    for i in 0..10 {
        let url = sim.node(i).url.clone();
        let before = sim.with_core(i, |c| c.snapshot()).expect("node");
        for replay in [&old, &current] {
            let answer =
                sim.net()
                    .send_from(attacker, &url, &GossipRequest::push(vec![replay.clone()]));
            assert!(
                answer.is_ok(),
                "a replay is harmless, not an error: {answer:?}"
            );
        }
        let answer =
            sim.net()
                .send_from(attacker, &url, &GossipRequest::push(vec![forged.clone()]));
        assert_eq!(answer, Err(TransportError::Refused("forged".into())));
        assert_eq!(sim.with_core(i, |c| c.snapshot()).expect("node"), before);
        if i != 3 {
            let rejected = sim
                .with_core(i, |c| c.stats().descriptors_rejected.clone())
                .expect("node");
            assert!(
                rejected.get("stale").copied().unwrap_or(0) >= 1,
                "{rejected:?}"
            );
            assert!(
                rejected.get("bad_signature").copied().unwrap_or(0) >= 1,
                "{rejected:?}"
            );
        }
    }
    let merged = sim
        .with_core(0, |c| c.merge(&old, sim.now()))
        .expect("node");
    assert_eq!(merged, Err(MergeError::Stale));
}

/// A descriptor of a made-up node at a made-up URL, validly signed.
fn fake(i: u32, issued_at: u64) -> SignedDescriptor {
    let mut seed = [0xa5u8; 32];
    seed[..4].copy_from_slice(&i.to_be_bytes());
    let identity = Identity::from_seed(seed);
    Descriptor {
        url: PeerUrl::parse(&format!("https://fake{i}.attacker.example")).expect("url"),
        key: identity.public_key(),
        version: "6.6.6".into(),
        weight: 100.0,
        issued_at: Timestamp::from_unix_ms(issued_at),
        leaving: false,
        pool: Vec::new(),
    }
    .sign(&identity)
    .expect("sign")
    .to_signed()
}

#[test]
fn a_flood_of_fake_descriptors_leaves_caps_intact_and_real_nodes_listed() {
    const TOTAL: usize = 100_000;
    const FAKES: u32 = 1_500;
    let n = 30;
    let mut sim = Simulation::new(n, Seeding::First, 12);
    converge_and_list(&mut sim);
    let cap = sim
        .with_core(0, |c| c.settings().max_members)
        .expect("node");
    let mut rng = StdRng::seed_from_u64(12);
    let now_ms = sim.now().as_unix_ms();
    let fakes: Vec<SignedDescriptor> = (0..FAKES).map(|i| fake(i, now_ms)).collect();
    let real: Vec<SignedDescriptor> = (0..n)
        .map(|i| {
            sim.with_core(i, |c| c.own_descriptor().to_signed())
                .expect("node")
        })
        .collect();
    // The rest of the flood: forgeries of real and fake nodes, malformed junk, replays.
    let mut junk = Vec::with_capacity(TOTAL - fakes.len());
    while junk.len() < TOTAL - fakes.len() {
        let mut d = if rng.random_bool(0.5) {
            real[rng.random_range(0..n)].clone()
        } else {
            fakes[rng.random_range(0..fakes.len())].clone()
        };
        match rng.random_range(0..6) {
            0 => d.url = format!("https://evil{}.example", rng.random_range(0..1000)),
            1 => {
                d.issued_at += 1;
                d.weight = 100.0;
            }
            2 => d.key = "AAAA".into(),
            3 => d.url = format!("https://{}.example", "x".repeat(300)),
            4 => d.weight = 1e9,
            _ => {} // a replay of something already known
        }
        junk.push(d);
    }
    // The attacker tries one huge message first: refused whole.
    let target = sim.node(0).url.clone();
    let attacker = |k: u32| IpAddr::V4(Ipv4Addr::new(13, 1, (k >> 8) as u8, k as u8));
    let huge = GossipRequest::push(junk[..1000].to_vec());
    assert_eq!(
        sim.net().send_from(attacker(0), &target, &huge),
        Err(TransportError::Refused("too_large".into()))
    );
    // Then the real flood, in messages of the largest allowed size, at random nodes, over
    // ten rounds: the valid fakes from many addresses, the junk from a few.
    let mut sent = 0;
    let mut messages: Vec<(IpAddr, GossipRequest)> = Vec::new();
    for (k, chunk) in fakes.chunks(MAX_DESCRIPTORS_PER_MESSAGE).enumerate() {
        messages.push((
            attacker(100 + k as u32),
            GossipRequest::push(chunk.to_vec()),
        ));
        sent += chunk.len();
    }
    for (k, chunk) in junk.chunks(MAX_DESCRIPTORS_PER_MESSAGE).enumerate() {
        messages.push((attacker(k as u32 % 4), GossipRequest::push(chunk.to_vec())));
        sent += chunk.len();
    }
    assert_eq!(sent, TOTAL);
    for i in 0..messages.len() {
        let j = rng.random_range(i..messages.len());
        messages.swap(i, j);
    }
    let per_round = messages.len().div_ceil(10);
    for batch in messages.chunks(per_round) {
        for (ip, message) in batch {
            let to = sim.node(rng.random_range(0..n)).url.clone();
            let _ = sim.net().send_from(*ip, &to, message);
        }
        sim.round();
        for i in 0..n {
            let members = sim.with_core(i, |c| c.member_count()).expect("node");
            assert!(members <= cap, "node {i} holds {members} > {cap}");
        }
        assert!(sim.converged(), "a real node was lost during the flood");
    }
    // The fakes spread (they are validly signed) up to the cap, but never got listed, and
    // every real node is still listed everywhere.
    let held = sim.with_core(5, |c| c.member_count()).expect("node");
    assert!(held > n, "the fakes did reach the nodes ({held})");
    assert!(sim.all_listed());
    for i in 0..n {
        let servers = sim.with_core(i, |c| c.servers(sim.now())).expect("node");
        assert_eq!(servers.len(), n, "node {i} lists a fake");
    }
    let stats = sim.with_core(0, |c| c.stats().clone()).expect("node");
    for kind in ["rate_limited", "forged", "too_large"] {
        assert!(
            stats.requests_refused.contains_key(kind),
            "{kind}: {stats:?}"
        );
    }
    // And the network is still healthy a while later.
    for _ in 0..10 {
        sim.round();
    }
    assert!(sim.converged() && sim.all_listed());
}

#[test]
fn a_snapshot_round_trips_and_restores_the_view() {
    let mut sim = Simulation::new(20, Seeding::First, 13);
    converge_and_list(&mut sim);
    let state = sim.with_core(4, |c| c.snapshot()).expect("node");
    let json = serde_json::to_vec(&state).expect("json");
    let back: State = serde_json::from_slice(&json).expect("parse");
    assert_eq!(back, state);
    assert_eq!(back.members.len(), 19);
    // A restart restores it: same nodes, same scores, same descriptors.
    let view = |sim: &Simulation| {
        let members = sim.with_core(4, |c| c.members(sim.now())).expect("node");
        members
            .into_iter()
            .skip(1)
            .map(|m| (m.key, m.score, m.issued_at))
            .collect::<Vec<_>>()
    };
    let original = view(&sim);
    sim.crash(4);
    sim.restart(4);
    assert_eq!(view(&sim), original);
    let own = sim
        .with_core(4, |c| c.own_descriptor().issued_at())
        .expect("node");
    assert!(
        own > state.own_issued_at,
        "the restarted node issues a newer descriptor"
    );
}

#[tokio::test]
async fn the_memory_transport_runs_exchanges_and_probes() {
    let net = MemoryNetwork::new(SIM_EPOCH, 1);
    let url = |i: usize| Simulation::node_url(i);
    let make = |i: usize, seeds: &[usize]| {
        let mut config = Settings::new(url(i), "0.3.0");
        config.probe_timeout = Duration::from_secs(2);
        let peers = seeds
            .iter()
            .map(|&s| Peer {
                url: url(s),
                weight: None,
                key: None,
                line: 1,
            })
            .collect();
        Core::new(
            Identity::from_seed([i as u8 + 1; 32]),
            config,
            peers,
            SIM_EPOCH,
        )
        .expect("core")
    };
    let a = net.add(make(0, &[1]), Simulation::node_ip(0));
    let _b = net.add(make(1, &[]), Simulation::node_ip(1));
    let transport = net.transport(url(0));
    let mut rng = StdRng::seed_from_u64(1);
    let actions = a.lock().tick(SIM_EPOCH, &mut rng);
    let mut exchanges = 0;
    for action in actions {
        if let Action::Gossip { to, request } = action {
            let trips = exchange(&transport, &a, &to, request, || net.now(), &mut rng).await;
            assert_eq!(trips, Ok(2));
            exchanges += 1;
        }
    }
    assert_eq!(exchanges, 1);
    let key_b = net.with_core(&url(1), |c| c.public_key()).expect("b");
    assert!(a.lock().held(&key_b).is_some());
    // Nothing new: one round trip.
    let digest = GossipRequest::Digest {
        v: 1,
        buckets: a.lock().digest(),
    };
    let trips = exchange(
        &transport,
        &a,
        &url(1),
        digest.clone(),
        || net.now(),
        &mut rng,
    )
    .await;
    assert_eq!(trips, Ok(1));
    // A cut link is an error of the transport, not of the core.
    net.cut(&url(0), &url(1));
    let err = exchange(
        &transport,
        &a,
        &url(1),
        digest.clone(),
        || net.now(),
        &mut rng,
    )
    .await;
    assert!(matches!(
        err,
        Err(ExchangeError::Transport(TransportError::Unreachable(_)))
    ));
    assert!(!transport.probe(&url(1)).await.answered);
    net.heal(&url(0), &url(1));
    let probe = transport.probe(&url(1)).await;
    assert!(probe.answered && probe.cors && probe.key_seen == Some(key_b));
    // A refusal by the peer comes back as what the peer said.
    let bad = GossipRequest::Digest {
        v: 99,
        buckets: a.lock().digest(),
    };
    let err = transport.gossip(&url(1), bad).await;
    assert_eq!(
        err,
        Err(TransportError::Refused(
            GossipError::UnsupportedVersion(99).kind().to_owned()
        ))
    );
}
