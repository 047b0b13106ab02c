//! Core tests: probes, scores, listing limits, the member cap, leaving and expiry.

use super::*;

#[test]
fn seeds_are_listed_after_one_good_probe_and_gossip_nodes_after_fourteen() {
    let mut a = core(0, &[1]);
    let b = core(1, &[]);
    let c = core(2, &[]);
    a.merge(&b.own_descriptor().to_signed(), T0).expect("seed");
    a.merge(&c.own_descriptor().to_signed(), T0)
        .expect("gossip");
    assert_eq!(a.servers(T0).len(), 1, "only itself before any probe");
    let actions = a.tick(T0, &mut rng());
    let probed: Vec<&PeerUrl> = actions
        .iter()
        .filter_map(|action| match action {
            Action::Probe { url } => Some(url),
            Action::Gossip { .. } | Action::AskPool { .. } | Action::ProbePool { .. } => None,
        })
        .collect();
    assert_eq!(
        probed,
        vec![&url(1), &url(2)],
        "newcomers are probed at once"
    );
    probes(&mut a, &url(1), &healthy(&b), 1);
    probes(&mut a, &url(2), &healthy(&c), 13);
    let servers: Vec<String> = a.servers(T0).into_iter().map(|s| s.url).collect();
    assert_eq!(servers, vec![url(0).to_string(), url(1).to_string()]);
    probes(&mut a, &url(2), &healthy(&c), 1);
    assert_eq!(a.servers(T0).len(), 3);
    let view = a.members(T0);
    assert!(view[0].is_self);
    assert!(
        view.iter().all(|m| m.state == MemberState::Listed),
        "{view:?}"
    );
    assert_eq!(view[1].last_probe, Some(ProbeVerdict::Good));
}

#[test]
fn a_probe_is_good_only_in_time_with_the_right_key_and_cors() {
    let b = core(1, &[]);
    let good = healthy(&b);
    let mut slow = good.clone();
    slow.latency = Duration::from_secs(3);
    let mut wrong_key = good.clone();
    wrong_key.key_seen = Some(identity(9).public_key());
    let mut no_cors = good.clone();
    no_cors.cors = false;
    for (outcome, verdict) in [
        (slow, ProbeVerdict::TooSlow),
        (wrong_key, ProbeVerdict::WrongKey),
        (no_cors, ProbeVerdict::NoCors),
        (ProbeOutcome::unreachable(None), ProbeVerdict::NoAnswer),
        (ProbeOutcome::forbidden(None), ProbeVerdict::Forbidden),
    ] {
        let mut a = core(0, &[1]);
        a.merge(&b.own_descriptor().to_signed(), T0).expect("seed");
        probes(&mut a, &url(1), &outcome, 1);
        let member = &a.members(T0)[1];
        assert_eq!(member.last_probe, Some(verdict));
        assert_eq!(member.state, MemberState::Failing);
        // A peers.toml node that never answered keeps its start score: failures before
        // its first good probe cost nothing (the newcomer's view of a seed that is down).
        assert_eq!(member.score, 10.0);
        assert_eq!(a.servers(T0).len(), 1);
    }
}

#[test]
fn a_crashed_node_drops_out_after_two_failed_probes_from_the_ceiling() {
    let mut a = core(0, &[1]);
    let b = core(1, &[]);
    a.merge(&b.own_descriptor().to_signed(), T0).expect("seed");
    probes(&mut a, &url(1), &healthy(&b), 300);
    assert!(a.members(T0)[1].score > 19.99);
    probes(&mut a, &url(1), &ProbeOutcome::unreachable(None), 1);
    assert_eq!(
        a.servers(T0).len(),
        2,
        "one failure from the top: still listed"
    );
    probes(&mut a, &url(1), &ProbeOutcome::unreachable(None), 1);
    assert_eq!(a.servers(T0).len(), 1, "two failures: gone");
    assert_eq!(a.members(T0)[1].state, MemberState::Failing);
}

#[test]
fn private_addresses_are_not_probed_unless_allowed() {
    let local = PeerUrl::parse("http://127.0.0.1:8081").expect("url");
    for allow in [false, true] {
        let mut a = core_with(0, &[], |c| c.allow_private_peers = allow);
        a.merge(&descriptor(5, &local, T0, false), T0)
            .expect("merge");
        let actions = a.tick(T0, &mut rng());
        let probed = actions
            .iter()
            .any(|action| matches!(action, Action::Probe { url } if *url == local));
        assert_eq!(probed, allow);
        let verdict = a.members(T0)[1].last_probe;
        assert_eq!(
            verdict,
            if allow {
                None
            } else {
                Some(ProbeVerdict::Forbidden)
            }
        );
    }
}

#[test]
fn listing_is_limited_per_address_and_per_network() {
    let mut a = core_with(0, &[], |c| {
        c.max_listed_per_ip = 2;
        c.max_listed_per_subnet = 3;
    });
    // Five nodes behind one address, three more in the same /24, one elsewhere.
    let addresses = [
        "11.1.1.1", "11.1.1.1", "11.1.1.1", "11.1.1.1", "11.1.1.1", "11.1.1.2", "11.1.1.3",
        "11.1.1.4", "12.0.0.1",
    ];
    for (i, addr) in addresses.iter().enumerate() {
        let n = i + 1;
        a.merge(&descriptor(n, &url(n), T0, false), T0)
            .expect("merge");
        let outcome = ProbeOutcome::healthy(
            identity(n).public_key(),
            Duration::from_millis(5),
            addr.parse().ok(),
        );
        probes(&mut a, &url(n), &outcome, 20);
    }
    let listed = a.listed_keys(T0);
    assert_eq!(
        listed.len(),
        3 + 1,
        "three in 11.1.1.0/24 (two on .1), one in 12.0.0.0/24"
    );
    let on_first: usize = (1..=5)
        .filter(|&n| listed.contains(&identity(n).public_key()))
        .count();
    assert_eq!(on_first, 2);
    assert!(listed.contains(&identity(9).public_key()));
    // Private addresses (local clusters, --allow-private-peers) are not limited.
    let mut b = core_with(0, &[], |c| c.allow_private_peers = true);
    for n in 1..=5 {
        b.merge(&descriptor(n, &url(n), T0, false), T0)
            .expect("merge");
        let outcome = ProbeOutcome::healthy(
            identity(n).public_key(),
            Duration::from_millis(5),
            "127.0.0.1".parse().ok(),
        );
        probes(&mut b, &url(n), &outcome, 20);
    }
    assert_eq!(b.listed_keys(T0).len(), 5);
}

#[test]
fn the_member_cap_evicts_only_failing_or_left_nodes() {
    let mut a = core_with(0, &[], |c| c.max_members = 3);
    for n in 1..=3 {
        a.merge(&descriptor(n, &url(n), T0, false), T0)
            .expect("merge");
    }
    // Full of nodes not yet probed: a newcomer is refused, nothing changes.
    let before = fingerprint(&mut a);
    assert_eq!(
        a.merge(&descriptor(4, &url(4), T0, false), T0),
        Err(MergeError::Full)
    );
    assert_eq!(fingerprint(&mut a), before);
    // Node 1 proves healthy and is listed, node 2 fails: the newcomer replaces node 2.
    probes(
        &mut a,
        &url(1),
        &ProbeOutcome::healthy(identity(1).public_key(), Duration::ZERO, None),
        20,
    );
    probes(&mut a, &url(2), &ProbeOutcome::unreachable(None), 1);
    assert_eq!(
        a.merge(&descriptor(4, &url(4), T0, false), T0),
        Ok(MergeOutcome::Added)
    );
    assert!(a.held(&identity(2).public_key()).is_none());
    assert!(a.held(&identity(1).public_key()).is_some());
    assert_eq!(a.member_count(), 3);
    assert_eq!(a.stats().evictions, 1);
    // Making room is not forgetting: the evicted descriptor pushed back is judged afresh,
    // and takes the place of node 3, failing now.
    probes(&mut a, &url(3), &ProbeOutcome::unreachable(None), 1);
    assert_eq!(
        a.merge(&descriptor(2, &url(2), T0, false), at(1)),
        Ok(MergeOutcome::Added)
    );
    // A listed node is never evicted: with node 1 listed and nodes 2 and 4 unprobed,
    // the list is full for newcomers.
    assert_eq!(
        a.merge(&descriptor(5, &url(5), at(1), false), at(1)),
        Err(MergeError::Full)
    );
    assert!(a.held(&identity(1).public_key()).is_some());
}

#[test]
fn leave_is_pushed_to_everyone_and_removes_the_node_at_once() {
    let mut a = core(0, &[1, 2]);
    let mut b = core(1, &[]);
    let mut c = core(2, &[]);
    exchange(&mut a, &mut b, ip(0), T0);
    exchange(&mut a, &mut c, ip(0), T0);
    exchange(&mut b, &mut a, ip(1), T0);
    probes(&mut b, &url(0), &healthy(&a), 20);
    assert!(b.listed_keys(T0).contains(&a.public_key()));
    let actions = a.leave(at(5));
    let targets: Vec<PeerUrl> = actions
        .iter()
        .map(|action| match action {
            Action::Gossip { to, .. } => to.clone(),
            Action::Probe { url } | Action::ProbePool { url } => url.clone(),
            Action::AskPool { pool, .. } => panic!("a leave asks no pool: {pool}"),
        })
        .collect();
    assert_eq!(targets, vec![url(1), url(2)]);
    assert!(
        a.tick(at(10), &mut rng()).is_empty(),
        "a node that left is silent"
    );
    assert!(a.servers(at(10)).is_empty());
    let Action::Gossip { request, .. } = &actions[0] else {
        panic!("a push")
    };
    b.handle_gossip(request.clone(), ip(0), at(5))
        .expect("leave taken");
    assert!(!b.listed_keys(at(5)).contains(&a.public_key()));
    let view = b.members(at(5));
    let left = view
        .iter()
        .find(|m| m.key == a.public_key().to_base64())
        .expect("known");
    assert_eq!(left.state, MemberState::Left);
    // It is no longer probed.
    let probes_after: Vec<Action> = b
        .tick(at(100), &mut rng())
        .into_iter()
        .filter(|action| matches!(action, Action::Probe { url: u } if *u == url(0)))
        .collect();
    assert!(probes_after.is_empty());
    // An older descriptor from before the leave can't bring it back.
    assert_eq!(
        b.merge(&descriptor(0, &url(0), T0, false), at(5)),
        Err(MergeError::Stale)
    );
}

#[test]
fn expired_descriptors_are_forgotten_and_live_nodes_refresh() {
    let mut a = core_with(0, &[], |c| {
        c.refresh_interval = Duration::from_secs(3600);
        c.descriptor_max_age = Duration::from_secs(4 * 3600);
    });
    a.merge(&descriptor(5, &url(5), T0, false), T0)
        .expect("merge");
    let first = a.own_descriptor().issued_at();
    a.tick(at(3600), &mut rng());
    assert_eq!(a.own_descriptor().issued_at(), at(3600), "refreshed");
    assert!(a.own_descriptor().issued_at() > first);
    a.tick(at(4 * 3600 + 120), &mut rng());
    assert!(a.held(&identity(5).public_key()).is_none(), "expired");
    assert_eq!(a.member_count(), 0);
}
