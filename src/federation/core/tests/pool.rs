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

#[test]
fn only_nodes_probed_healthy_at_a_signed_pool_address_are_pool_nodes() {
    let mut a = pool_core(0, &[1, 2, 3, 4], &[ip(0)]);
    let b = pool_core(1, &[], &[ip(1)]);
    // Claims an address that is not where the probes reach it.
    let c = pool_core(2, &[], &[ip(7)]);
    // Healthy, but does not serve the pool.
    let d = core(3, &[]);
    let e = pool_core(4, &[], &[ip(4)]);
    for other in [&b, &c, &d, &e] {
        a.merge(&other.own_descriptor().to_signed(), T0)
            .expect("seed");
    }
    assert_eq!(
        keys(&a.pool_nodes(T0)),
        vec![a.public_key()],
        "before any probe: itself"
    );
    probes(&mut a, &url(1), &reached_at(&b, ip(1)), 3);
    probes(&mut a, &url(2), &reached_at(&c, ip(2)), 3);
    probes(&mut a, &url(3), &reached_at(&d, ip(3)), 3);
    // Long healthy, so one failed probe leaves it listed.
    probes(&mut a, &url(4), &reached_at(&e, ip(4)), 20);
    let nodes = a.pool_nodes(at(5));
    assert_eq!(
        keys(&nodes),
        sorted(a.public_key(), vec![b.public_key(), e.public_key()])
    );
    let of_b = nodes.iter().find(|n| n.key == b.public_key()).expect("b");
    assert_eq!(of_b.addresses, vec![ip(1)]);
    assert_eq!(of_b.url, url(1).to_string());

    // One failed probe takes a node out of the pool at once, while it is still listed.
    a.on_probe_result(&url(4), ProbeOutcome::unreachable(Some(ip(4))), at(6));
    assert!(a.listed_keys(at(6)).contains(&e.public_key()));
    assert_eq!(
        keys(&a.pool_nodes(at(6))),
        vec![a.public_key(), b.public_key()]
    );
    // A good probe brings it back.
    a.on_probe_result(&url(4), reached_at(&e, ip(4)), at(7));
    assert_eq!(a.pool_nodes(at(7)).len(), 3);

    // A node that has left is out, itself included.
    a.leave(at(8));
    assert!(!keys(&a.pool_nodes(at(8))).contains(&a.public_key()));
}

#[test]
fn a_node_failing_its_probes_never_becomes_a_pool_node() {
    let mut a = pool_core(0, &[1], &[ip(0)]);
    let b = pool_core(1, &[], &[ip(1)]);
    a.merge(&b.own_descriptor().to_signed(), T0).expect("seed");
    for k in 0..20 {
        a.on_probe_result(&url(1), ProbeOutcome::unreachable(Some(ip(1))), at(k));
        assert_eq!(keys(&a.pool_nodes(at(k))), vec![a.public_key()]);
    }
}
