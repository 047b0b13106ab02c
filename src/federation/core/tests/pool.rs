//! Core tests: which nodes the DNS pool may answer with.

use super::*;

fn pool_core(i: usize, seeds: &[usize], pool: &[IpAddr]) -> Core {
    core_with(i, seeds, |c| c.pool_addresses = pool.to_vec())
}

fn reached_at(core: &Core, ip: IpAddr) -> ProbeOutcome {
    ProbeOutcome::healthy(core.public_key(), Duration::from_millis(30), Some(ip))
}

/// The keys, this node's first and then the others sorted.
fn keys(nodes: &[PoolNode]) -> Vec<PublicKey> {
    let mut keys: Vec<PublicKey> = nodes.iter().map(|n| n.key).collect();
    if keys.len() > 1 {
        keys[1..].sort();
    }
    keys
}

fn sorted(first: PublicKey, mut rest: Vec<PublicKey>) -> Vec<PublicKey> {
    rest.sort();
    rest.insert(0, first);
    rest
}

/// The pool URLs a tick of `core` at `now` asks to probe.
fn pool_probes(core: &mut Core, now: Timestamp) -> Vec<PeerUrl> {
    core.tick(now, &mut rng())
        .into_iter()
        .filter_map(|action| match action {
            Action::ProbePool { url } => Some(url),
            _ => None,
        })
        .collect()
}

fn pool_url(i: usize) -> PeerUrl {
    PeerUrl::parse(&format!("http://{}", ip(i))).expect("pool URL")
}

/// A DNS node serving the pool at `ip(i)`.
fn dns_core(i: usize, seeds: &[usize]) -> Core {
    core_with(i, seeds, |c| {
        c.pool_addresses = vec![ip(i)];
        c.answers_pool_dns = true;
    })
}

#[test]
fn only_nodes_probed_healthy_at_a_signed_pool_address_are_pool_nodes() {
    let mut a = dns_core(0, &[1, 2, 3, 4]);
    let b = pool_core(1, &[], &[ip(1)]);
    // Claims an address at which another node answers.
    let c = pool_core(2, &[], &[ip(7)]);
    // Healthy, but does not serve the pool.
    let d = core(3, &[]);
    let e = pool_core(4, &[], &[ip(4)]);
    for other in [&b, &c, &d, &e] {
        a.merge(&other.own_descriptor().to_signed(), T0)
            .expect("seed");
    }
    assert!(
        a.pool_nodes(T0).is_empty(),
        "not even itself before its own probe"
    );
    // Its own address is probed at the pool port (80: the canonical URL has no port),
    // as a client would connect; so are those of the `peers.toml` nodes.
    assert!(pool_probes(&mut a, T0).contains(&pool_url(0)));
    a.on_pool_probe_result(&pool_url(0), reached_at(&a, ip(0)), T0);
    assert_eq!(keys(&a.pool_nodes(T0)), vec![a.public_key()]);

    probes(&mut a, &url(1), &reached_at(&b, ip(1)), 3);
    probes(&mut a, &url(2), &reached_at(&c, ip(2)), 3);
    probes(&mut a, &url(3), &reached_at(&d, ip(3)), 3);
    // Long healthy, so one failed probe leaves it listed.
    probes(&mut a, &url(4), &reached_at(&e, ip(4)), 20);
    // Listed, but no pool address of theirs answered yet.
    assert_eq!(keys(&a.pool_nodes(at(5))), vec![a.public_key()]);
    // The pool addresses of the nodes that passed probes are probed with them.
    let asked = pool_probes(&mut a, at(10));
    for i in [0, 1, 4, 7] {
        assert!(asked.contains(&pool_url(i)), "{i}: {asked:?}");
    }
    assert_eq!(asked.len(), 4, "{asked:?}");
    for (i, node) in [(1, &b), (4, &e)] {
        a.on_pool_probe_result(&pool_url(i), reached_at(node, ip(i)), at(10));
    }
    a.on_pool_probe_result(&pool_url(0), reached_at(&a, ip(0)), at(10));
    // Someone else's server answers at the address c signed.
    a.on_pool_probe_result(&pool_url(7), reached_at(&d, ip(7)), at(10));
    let nodes = a.pool_nodes(at(10));
    assert_eq!(
        keys(&nodes),
        sorted(a.public_key(), vec![b.public_key(), e.public_key()])
    );
    let of_b = nodes.iter().find(|n| n.key == b.public_key()).expect("b");
    assert_eq!(of_b.addresses, vec![ip(1)]);
    assert_eq!(of_b.url, url(1).to_string());

    // One failed probe takes a node out of the pool at once, while it is still listed.
    a.on_probe_result(&url(4), ProbeOutcome::unreachable(Some(ip(4))), at(11));
    assert!(a.listed_keys(at(11)).contains(&e.public_key()));
    assert_eq!(
        keys(&a.pool_nodes(at(11))),
        vec![a.public_key(), b.public_key()]
    );
    // A good probe brings it back.
    a.on_probe_result(&url(4), reached_at(&e, ip(4)), at(12));
    assert_eq!(a.pool_nodes(at(12)).len(), 3);
    // Its URL answers, but its pool address at the pool port does not: out.
    a.on_pool_probe_result(&pool_url(4), ProbeOutcome::unreachable(None), at(13));
    assert_eq!(a.pool_nodes(at(13)).len(), 2);

    // This node's own HTTP at its pool address dies: it answers without itself.
    a.on_pool_probe_result(&pool_url(0), ProbeOutcome::unreachable(None), at(14));
    assert_eq!(keys(&a.pool_nodes(at(14))), vec![b.public_key()]);
    a.on_pool_probe_result(&pool_url(0), reached_at(&a, ip(0)), at(15));
    assert!(keys(&a.pool_nodes(at(15))).contains(&a.public_key()));
    // A good probe counts only while recent: two probe intervals and a timeout (a node
    // whose probes stopped keeps no address).
    assert!(keys(&a.pool_nodes(at(37))).contains(&a.public_key()));
    assert!(!keys(&a.pool_nodes(at(38))).contains(&a.public_key()));

    // A node that has left is out, itself included.
    a.on_pool_probe_result(&pool_url(0), reached_at(&a, ip(0)), at(40));
    a.leave(at(40));
    assert!(!keys(&a.pool_nodes(at(40))).contains(&a.public_key()));
}

#[test]
fn a_node_that_answers_no_dns_probes_no_pool_address() {
    let mut a = pool_core(0, &[1], &[ip(0)]);
    let b = pool_core(1, &[], &[ip(1)]);
    a.merge(&b.own_descriptor().to_signed(), T0).expect("seed");
    probes(&mut a, &url(1), &reached_at(&b, ip(1)), 3);
    assert!(pool_probes(&mut a, at(10)).is_empty());
}

#[test]
fn a_node_failing_its_probes_never_becomes_a_pool_node() {
    let mut a = dns_core(0, &[1]);
    let b = pool_core(1, &[], &[ip(1)]);
    a.merge(&b.own_descriptor().to_signed(), T0).expect("seed");
    a.on_pool_probe_result(&pool_url(0), reached_at(&a, ip(0)), T0);
    for k in 0..20 {
        a.on_probe_result(&url(1), ProbeOutcome::unreachable(Some(ip(1))), at(k));
        a.on_pool_probe_result(&pool_url(1), reached_at(&b, ip(1)), at(k));
        assert_eq!(keys(&a.pool_nodes(at(k))), vec![a.public_key()]);
    }
}

/// A node whose descriptor claims `weight`, serving the pool at `ip(i)`.
fn weighted(i: usize, weight: f64, t: Timestamp) -> SignedDescriptor {
    Descriptor {
        url: url(i),
        key: identity(i).public_key(),
        version: "0.3.0".into(),
        weight,
        issued_at: t,
        leaving: false,
        pool: vec![ip(i)],
    }
    .sign(&identity(i))
    .expect("sign")
    .to_signed()
}

#[test]
fn a_node_claiming_weight_100_counts_with_its_bound_in_servers_fills_and_dns() {
    // Three pool nodes as a DNS node sees them: itself, an honest node, and one whose
    // descriptor claims the most weight a descriptor may carry.
    let mut a = dns_core(0, &[]);
    a.merge(&weighted(1, 1.0, T0), T0).expect("honest");
    a.merge(&weighted(2, 100.0, T0), T0).expect("heavy");
    let mut now = T0;
    let step = |a: &mut Core, now: Timestamp| {
        a.tick(now, &mut rng());
        for i in 1..=2 {
            let health =
                ProbeOutcome::healthy(identity(i).public_key(), Duration::from_millis(5), None);
            a.on_probe_result(&url(i), health.clone(), now);
            a.on_pool_probe_result(&pool_url(i), health, now);
        }
        let own = ProbeOutcome::healthy(a.public_key(), Duration::from_millis(5), None);
        a.on_pool_probe_result(&pool_url(0), own, now);
    };
    // Gossip-learned: listed after 14 good probes.
    for _ in 0..16 {
        step(&mut a, now);
        now = now.saturating_add(Duration::from_secs(10));
    }
    let heavy = identity(2).public_key().to_base64();
    let weight_of = |a: &Core, now: Timestamp| {
        a.servers(now)
            .into_iter()
            .find(|s| s.key == heavy)
            .map(|s| s.weight)
    };
    assert_eq!(
        weight_of(&a, now),
        Some(NEW_NODE_WEIGHT),
        "new: capped at 1"
    );

    // The share of owners it draws among the three (what the fill side's rendezvous
    // does with `servers`), and of first places in DNS answers.
    let shares = |a: &Core, now: Timestamp| {
        let servers = a.servers(now);
        let owners = (0..6000)
            .filter(|n| {
                let key = format!("library/repo-{n}");
                let ranked = crate::federation::rendezvous::rank(
                    &servers,
                    &key,
                    |s| s.url.as_str(),
                    |s| s.weight,
                );
                ranked.first().is_some_and(|s| s.key == heavy)
            })
            .count();
        let nodes = a.pool_nodes(now);
        assert_eq!(nodes.len(), 3);
        let mut draw = StdRng::seed_from_u64(11);
        let firsts = (0..6000)
            .filter(|_| {
                let answer = crate::dns::zone::choose(&nodes, false, true, &mut draw);
                answer
                    .first()
                    .is_some_and(|(i, _)| nodes[*i].key == identity(2).public_key())
            })
            .count();
        (owners as f64 / 6000.0, firsts as f64 / 6000.0)
    };
    let (owners, firsts) = shares(&a, now);
    assert!((0.30..0.37).contains(&owners), "owner share {owners}");
    assert!(
        (0.30..0.37).contains(&firsts),
        "first-answer share {firsts}"
    );

    // After a day listed without a break: at most the cap, 2 of 4.
    for round in 0..(24 * 360) {
        if round % 360 == 0 {
            // Each node re-signs its descriptor now and then, as a live node does.
            a.merge(&weighted(1, 1.0, now), now).expect("honest");
            a.merge(&weighted(2, 100.0, now), now).expect("heavy");
        }
        step(&mut a, now);
        now = now.saturating_add(Duration::from_secs(10));
    }
    assert_eq!(weight_of(&a, now), Some(WEIGHT_CAP));
    let (owners, firsts) = shares(&a, now);
    assert!((0.46..0.54).contains(&owners), "owner share {owners}");
    assert!(
        (0.46..0.54).contains(&firsts),
        "first-answer share {firsts}"
    );
    // This node counts itself within the cap too.
    assert_eq!(a.servers(now)[0].weight, 1.0);
    assert!(bounded_weight(100.0, None) == NEW_NODE_WEIGHT);
    assert!(bounded_weight(0.5, None) == 0.5, "a claim below 1 stands");
}
