//! Core tests: snapshots, hostile input, signature checks off the lock, member counts and
//! restarts.

use super::*;

#[test]
fn snapshot_round_trips_through_json() {
    let mut a = core(0, &[1]);
    let b = core(1, &[]);
    let c = core(2, &[]);
    a.merge(&b.own_descriptor().to_signed(), T0).expect("merge");
    a.merge(&c.own_descriptor().to_signed(), T0).expect("merge");
    probes(&mut a, &url(1), &healthy(&b), 20);
    probes(&mut a, &url(2), &ProbeOutcome::unreachable(None), 2);
    let state = a.snapshot();
    let json = serde_json::to_string(&state).expect("json");
    let back: State = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, state);

    let mut restarted = core(0, &[]);
    let report = restarted.restore(back, at(60));
    assert_eq!(report.restored, 2);
    assert_eq!(report.ignored, None);
    assert!(restarted.own_descriptor().issued_at() > a.own_descriptor().issued_at());
    let before: Vec<(String, f64)> = a
        .members(T0)
        .into_iter()
        .skip(1)
        .map(|m| (m.key, m.score))
        .collect();
    let after: Vec<(String, f64)> = restarted
        .members(at(60))
        .into_iter()
        .skip(1)
        .map(|m| (m.key, m.score))
        .collect();
    assert_eq!(before, after);
    // Listed again only after a fresh good probe.
    assert!(!restarted.listed_keys(at(60)).contains(&b.public_key()));
    restarted.on_probe_result(&url(1), healthy(&b), at(61));
    assert!(restarted.listed_keys(at(61)).contains(&b.public_key()));

    // Another node's state is not taken.
    let mut other = core(3, &[]);
    let report = other.restore(a.snapshot(), at(60));
    assert!(report.ignored.is_some());
    assert_eq!(other.member_count(), 0);
}

#[test]
fn malformed_gossip_never_panics() {
    use rand::RngExt as _;
    let mut a = core(0, &[1]);
    let mut b = core(1, &[]);
    for n in 2..6 {
        b.merge(&descriptor(n, &url(n), T0, false), T0)
            .expect("merge");
    }
    let digest = GossipRequest::Digest {
        v: PROTOCOL_VERSION,
        buckets: a.digest(),
    };
    let diff = b.handle_gossip(digest.clone(), ip(0), T0).expect("diff");
    let sync = a
        .handle_gossip_response(&url(1), diff.clone(), T0, &mut rng())
        .expect("sync")
        .expect("something to sync");
    let descriptors = b
        .handle_gossip(sync.clone(), ip(0), T0)
        .expect("descriptors");
    let samples: Vec<Vec<u8>> = [
        serde_json::to_vec(&digest),
        serde_json::to_vec(&sync),
        serde_json::to_vec(&diff),
        serde_json::to_vec(&descriptors),
    ]
    .into_iter()
    .map(|r| r.expect("json"))
    .collect();
    let mut r = StdRng::seed_from_u64(99);
    let mut parsed = 0;
    for round in 0..3000 {
        let mut bytes = samples[round % samples.len()].clone();
        for _ in 0..r.random_range(1..4) {
            let i = r.random_range(0..bytes.len());
            bytes[i] = match r.random_range(0..3) {
                0 => r.random(),
                1 => b"0123456789\"{}[],:aA+/="[r.random_range(0..22)],
                _ => bytes[bytes.len() - 1 - i],
            };
        }
        let from = IpAddr::V4(Ipv4Addr::new(11, 9, (round >> 8) as u8, round as u8));
        if let Ok(request) = serde_json::from_slice::<GossipRequest>(&bytes) {
            parsed += 1;
            let _ = a.handle_gossip(request, from, T0);
        }
        if let Ok(response) = serde_json::from_slice::<GossipResponse>(&bytes) {
            parsed += 1;
            let _ = a.handle_gossip_response(&url(1), response, T0, &mut r);
        }
    }
    assert!(
        parsed > 100,
        "the mutations must reach the core ({parsed} parsed)"
    );
    // Whatever got in, a's own descriptor and its invariants hold.
    assert_eq!(a.own_descriptor().url(), &url(0));
    assert!(a.member_count() <= a.settings().max_members);
}

#[test]
fn signature_checks_cover_what_the_merge_would_verify_and_nothing_else() {
    let mut a = core(0, &[]);
    let fresh = descriptor(1, &url(1), T0, false);
    // Without a cache there is nowhere to leave the results: nothing to check outside.
    assert!(a.signature_checks(std::slice::from_ref(&fresh)).is_empty());
    let cache = Arc::new(SignatureCache::with_capacity(64));
    a.set_signature_cache(Arc::clone(&cache));
    a.merge(&fresh, T0).expect("merge");
    // A descriptor claiming our own URL is refused and remembered like an eviction.
    let claim = descriptor(2, &url(0), T0, false);
    assert_eq!(a.merge(&claim, T0), Err(MergeError::ClaimsOwnUrl));
    let newer = descriptor(1, &url(1), at(1), false);
    let newcomer = descriptor(3, &url(3), T0, false);
    let message = [fresh.clone(), newer, claim, newcomer];
    // A replay and a forgotten descriptor are refused without a check by the merge, so
    // they are not checked outside either: replaying costs an attacker's target nothing.
    let checks = a.signature_checks(&message);
    assert_eq!(checks.len(), 2);
    let before = cache.checked();
    assert_eq!(checks.run(at(1)), 2);
    assert_eq!(cache.checked(), before + 2);
    // A message over the limit is refused whole: no checks for it.
    let flood: Vec<SignedDescriptor> = (0..=MAX_DESCRIPTORS_PER_MESSAGE)
        .map(|_| descriptor(4, &url(4), T0, false))
        .collect();
    assert!(a.signature_checks(&flood).is_empty());
}

#[test]
fn signature_checks_stop_at_a_forgery_as_the_merge_does() {
    let mut a = core(0, &[]);
    let cache = Arc::new(SignatureCache::with_capacity(64));
    a.set_signature_cache(Arc::clone(&cache));
    let mut forged = descriptor(6, &url(6), T0, false);
    forged.weight = 2.0;
    let message = [
        descriptor(5, &url(5), T0, false),
        forged,
        descriptor(7, &url(7), T0, false),
    ];
    let checks = a.signature_checks(&message);
    assert_eq!(checks.len(), 3);
    assert_eq!(checks.run(T0), 1, "the one before the forgery");
    assert_eq!(cache.checked(), 2, "the third was never looked at");
}

#[test]
fn checked_first_a_message_is_merged_without_a_signature_check() {
    // Two cores with the same history; one takes a message in one step, the other in the
    // steps a driver uses to keep the cryptography out of the core's lock.
    let make = || {
        let mut c = core_with(0, &[], |c| c.max_members = 4);
        c.set_signature_cache(Arc::new(SignatureCache::with_capacity(256)));
        for n in 1..=4 {
            c.merge(&descriptor(n, &url(n), T0, false), T0)
                .expect("merge");
        }
        probes(&mut c, &url(2), &ProbeOutcome::unreachable(None), 1);
        probes(&mut c, &url(3), &ProbeOutcome::unreachable(None), 2);
        c
    };
    let mut whole = make();
    let mut split = make();
    let message: Vec<SignedDescriptor> = (5..9)
        .map(|n| descriptor(n, &url(n), at(1), false))
        .chain([descriptor(1, &url(1), at(1), false)])
        .collect();
    let one_step = whole.handle_gossip(GossipRequest::push(message.clone()), ip(1), at(1));

    let admitted = split
        .admit_gossip(GossipRequest::push(message), ip(1), at(1))
        .expect("admitted");
    let checks = split.signature_checks(admitted.descriptors());
    assert_eq!(checks.len(), 5);
    checks.run(at(1));
    let cache = split.signature_cache.clone().expect("cache");
    let checked = cache.checked();
    let two_steps = split.answer_gossip(admitted, at(1));
    assert_eq!(
        cache.checked(),
        checked,
        "no signature checked in the merge"
    );

    assert_eq!(one_step, two_steps);
    assert_eq!(fingerprint(&mut whole), fingerprint(&mut split));
    assert_eq!(whole.stats(), split.stats());
    assert_eq!(
        split.stats().evictions,
        2,
        "the two failing nodes made room"
    );
}

#[test]
fn a_message_evicts_in_the_order_single_merges_would() {
    // Node 1 listed, nodes 2-6 failing with different scores, 7 and 8 not probed yet.
    let make = || {
        let mut c = core_with(0, &[], |c| c.max_members = 8);
        for n in 1..=8 {
            c.merge(&descriptor(n, &url(n), T0, false), T0)
                .expect("merge");
        }
        probes(
            &mut c,
            &url(1),
            &ProbeOutcome::healthy(identity(1).public_key(), Duration::ZERO, None),
            20,
        );
        for n in 2..=6 {
            probes(&mut c, &url(n), &ProbeOutcome::unreachable(None), 7 - n);
        }
        c
    };
    // Newcomers, with the listed node's leave among them: from then on it goes first.
    let now = at(30);
    let message: Vec<SignedDescriptor> = [9, 10]
        .iter()
        .map(|&n| descriptor(n, &url(n), now, false))
        .chain([descriptor(1, &url(1), now, true)])
        .chain((11..=15).map(|n| descriptor(n, &url(n), now, false)))
        .collect();
    let mut whole = make();
    whole
        .handle_gossip(GossipRequest::push(message.clone()), ip(1), now)
        .expect("answered");
    let mut single = make();
    let outcomes: Vec<_> = message.iter().map(|d| single.merge(d, now)).collect();
    assert_eq!(fingerprint(&mut whole), fingerprint(&mut single));
    let served = Stats {
        requests_served: 1,
        ..single.stats().clone()
    };
    assert_eq!(whole.stats(), &served);
    // Five failing nodes and the leaver made room for six newcomers; the seventh found
    // only nodes waiting for their first probe.
    assert_eq!(outcomes[2], Ok(MergeOutcome::Left));
    assert_eq!(outcomes[3], Ok(MergeOutcome::Added));
    assert!(
        whole.held(&identity(1).public_key()).is_none(),
        "the leaver went first"
    );
    assert_eq!(outcomes[7], Err(MergeError::Full));
    assert_eq!(whole.stats().evictions, 6);
    for n in 2..=6 {
        assert!(whole.held(&identity(n).public_key()).is_none(), "node {n}");
    }
}

#[test]
fn member_counts_match_the_member_list_and_proven_nodes_are_named() {
    let mut a = core(0, &[1]);
    for n in 1..=4 {
        a.merge(&descriptor(n, &url(n), T0, false), T0)
            .expect("merge");
    }
    a.merge(&descriptor(5, &url(5), T0, true), T0)
        .expect("a leave");
    probes(
        &mut a,
        &url(1),
        &ProbeOutcome::healthy(identity(1).public_key(), Duration::ZERO, None),
        1,
    );
    probes(
        &mut a,
        &url(2),
        &ProbeOutcome::healthy(identity(2).public_key(), Duration::ZERO, None),
        1,
    );
    probes(&mut a, &url(3), &ProbeOutcome::unreachable(None), 1);
    let members = a.members(at(1));
    let count = |state| {
        members
            .iter()
            .filter(|m| !m.is_self && m.state == state)
            .count()
    };
    let counts = a.member_counts(at(1));
    assert_eq!(
        counts,
        MemberCounts {
            listed: count(MemberState::Listed),
            probation: count(MemberState::Probation),
            failing: count(MemberState::Failing),
            left: count(MemberState::Left),
        }
    );
    assert_eq!(
        (counts.listed, counts.probation, counts.failing, counts.left),
        (1, 2, 1, 1)
    );
    // The seed, and the gossip-learned node with a good probe, are proven; a node never
    // seen healthy (failing or not probed yet) is not.
    assert!(a.is_proven(&url(1)));
    assert!(a.is_proven(&url(2)));
    assert!(!a.is_proven(&url(3)));
    assert!(!a.is_proven(&url(4)));
    assert!(!a.is_proven(&url(9)), "unknown URL");
}

/// Node `n` at `url(n)` as `a` learned it by gossip, after `good` good probes.
fn gossip_node_with_good_probes(n: usize, good: usize) -> Core {
    let mut a = core(0, &[]);
    a.merge(&descriptor(n, &url(n), T0, false), T0)
        .expect("merge");
    probes(&mut a, &url(n), &healthy_key(n), good);
    a
}

fn healthy_key(n: usize) -> ProbeOutcome {
    ProbeOutcome::healthy(identity(n).public_key(), Duration::from_millis(30), None)
}

fn is_listed(core: &Core, n: usize, now: Timestamp) -> bool {
    core.listed_keys(now).contains(&identity(n).public_key())
}

/// Good probes until node `n` is listed, at most `max`.
fn probes_until_listed(core: &mut Core, n: usize, now: Timestamp, max: usize) -> Option<usize> {
    (1..=max).find(|_| {
        core.on_probe_result(&url(n), healthy_key(n), now);
        is_listed(core, n, now)
    })
}

#[test]
fn a_restarted_node_is_back_after_one_good_probe_where_it_stood_before() {
    // An established node (60 good probes, score 19.08) is down for six probes and
    // restarts: its new descriptor says so.
    let mut restarted = gossip_node_with_good_probes(1, 60);
    let mut still_down = gossip_node_with_good_probes(1, 60);
    for core in [&mut restarted, &mut still_down] {
        assert!(is_listed(core, 1, at(60)));
        probes(core, &url(1), &ProbeOutcome::unreachable(None), 6);
        assert!(!is_listed(core, 1, at(60)));
    }
    // Six failures cost what two do: 19.08 * 0.95^2 - 9.75.
    let before = restarted.members(at(60))[1].score;
    assert!((before - 7.47).abs() < 0.01, "{before}");
    assert_eq!(
        restarted.merge(&descriptor(1, &url(1), at(61), false), at(61)),
        Ok(MergeOutcome::Updated)
    );
    // The outage counts as one failed probe: 19.08 * 0.95 - 5.
    let view = &restarted.members(at(61))[1];
    assert!((view.score - 13.12).abs() < 0.01, "{view:?}");
    assert!(
        !is_listed(&restarted, 1, at(61)),
        "not before the new process answered a probe"
    );
    assert_eq!(restarted.stats().outages_forgiven, 1);
    assert_eq!(probes_until_listed(&mut restarted, 1, at(61), 30), Some(1));
    // Without the restart the same node climbs back from two failures' worth, however
    // many probes failed (15 good probes and more before outages were bounded).
    let climb = probes_until_listed(&mut still_down, 1, at(61), 30).expect("listed");
    assert_eq!(climb, 5, "{climb} good probes");
}

#[test]
fn a_restart_gives_back_only_what_the_node_had_earned() {
    // Just listed (14 good probes from 0, score 10.24): one failure's worth less is 4.73,
    // and it needs 9 good probes again (25 from the -14.7 its five failures left).
    let mut young = gossip_node_with_good_probes(1, 14);
    probes(&mut young, &url(1), &ProbeOutcome::unreachable(None), 5);
    young
        .merge(&descriptor(1, &url(1), at(1), false), at(1))
        .expect("restart");
    let needed = probes_until_listed(&mut young, 1, at(1), 40).expect("listed");
    assert_eq!(needed, 9);
    // Never seen healthy: nothing earned, nothing given back.
    let mut fake = core(0, &[]);
    fake.merge(&descriptor(2, &url(2), T0, false), T0)
        .expect("merge");
    probes(&mut fake, &url(2), &ProbeOutcome::unreachable(None), 4);
    let score = fake.members(T0)[1].score;
    fake.merge(&descriptor(2, &url(2), at(1), false), at(1))
        .expect("newer");
    assert_eq!(fake.members(at(1))[1].score, score);
    assert_eq!(fake.stats().outages_forgiven, 0);
    // A newer descriptor of a healthy node changes nothing; a replayed one is refused.
    let mut healthy_node = gossip_node_with_good_probes(3, 30);
    let score = healthy_node.members(T0)[1].score;
    healthy_node
        .merge(&descriptor(3, &url(3), at(1), false), at(1))
        .expect("newer");
    assert_eq!(healthy_node.members(at(1))[1].score, score);
    assert!(is_listed(&healthy_node, 3, at(1)));
    assert_eq!(
        healthy_node.merge(&descriptor(3, &url(3), at(1), false), at(1)),
        Err(MergeError::Replayed)
    );
}

#[test]
fn a_node_that_restarts_whenever_it_fails_still_sinks() {
    // A hostile or crash-looping node re-signs after every outage. Each outage then costs
    // one failed probe instead of two, which is still more than three good probes earn:
    // it drops out and stays out, as a node failing one probe in four does.
    let mut a = gossip_node_with_good_probes(1, 200);
    let mut t = 1;
    let mut listed_at_cycle_end = Vec::new();
    for _ in 0..12 {
        probes(&mut a, &url(1), &ProbeOutcome::unreachable(None), 2);
        a.merge(&descriptor(1, &url(1), at(t), false), at(t))
            .expect("re-signed");
        t += 1;
        probes(&mut a, &url(1), &healthy_key(1), 3);
        listed_at_cycle_end.push(is_listed(&a, 1, at(t)));
    }
    assert_eq!(a.stats().outages_forgiven, 12);
    assert!(
        listed_at_cycle_end[6..].iter().all(|listed| !listed),
        "{listed_at_cycle_end:?}"
    );
    assert!(a.members(at(t))[1].score < 5.0);
    // And one re-signing cannot be used twice for the same run of failures.
    probes(&mut a, &url(1), &ProbeOutcome::unreachable(None), 3);
    a.merge(&descriptor(1, &url(1), at(t + 1), false), at(t + 1))
        .expect("restart");
    let once = a.members(at(t + 1))[1].score;
    probes(&mut a, &url(1), &ProbeOutcome::unreachable(None), 1);
    a.merge(&descriptor(1, &url(1), at(t + 2), false), at(t + 2))
        .expect("again");
    assert!(a.members(at(t + 2))[1].score < once);
}

#[test]
fn what_a_node_had_earned_survives_the_observers_restart() {
    let mut a = gossip_node_with_good_probes(1, 60);
    probes(&mut a, &url(1), &ProbeOutcome::unreachable(None), 6);
    let state = a.snapshot();
    assert!(state.members[0].standing.is_some());
    let json = serde_json::to_string(&state).expect("json");
    let mut b = core(0, &[]);
    b.restore(serde_json::from_str(&json).expect("parse"), at(1));
    b.merge(&descriptor(1, &url(1), at(2), false), at(2))
        .expect("restart");
    assert_eq!(b.stats().outages_forgiven, 1);
    assert_eq!(probes_until_listed(&mut b, 1, at(2), 30), Some(1));
}

#[test]
fn a_restart_counts_when_its_descriptor_comes_after_the_new_process_answered() {
    // Gossip is often slower than the next probe: the restarted process answers first.
    let mut a = gossip_node_with_good_probes(1, 60);
    probes(&mut a, &url(1), &ProbeOutcome::unreachable(None), 6);
    probes(&mut a, &url(1), &healthy_key(1), 2);
    assert!(!is_listed(&a, 1, at(1)));
    a.merge(&descriptor(1, &url(1), at(1), false), at(1))
        .expect("restart");
    assert_eq!(a.stats().outages_forgiven, 1);
    assert_eq!(probes_until_listed(&mut a, 1, at(1), 30), Some(1));
    // Once a node has climbed back by itself, a newer descriptor changes nothing.
    let mut b = gossip_node_with_good_probes(1, 60);
    probes(&mut b, &url(1), &ProbeOutcome::unreachable(None), 2);
    let climbed = probes_until_listed(&mut b, 1, at(1), 40).expect("listed");
    probes(&mut b, &url(1), &healthy_key(1), 10);
    let score = b.members(at(1))[1].score;
    b.merge(&descriptor(1, &url(1), at(2), false), at(2))
        .expect("refresh");
    assert_eq!(b.stats().outages_forgiven, 0, "climbed back in {climbed}");
    assert_eq!(b.members(at(2))[1].score, score);
}
