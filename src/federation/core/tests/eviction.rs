//! The member cap under a burst of fresh, validly signed fakes: who may be evicted for an
//! unproven newcomer, and how an evicted node comes back.

use super::*;

/// Pushes `count` fresh, validly signed descriptors of dead URLs, in messages of the
/// protocol's largest size, from one source: what any client can send in a fraction of a
/// second. Returns how many were taken.
fn flood(core: &mut Core, count: usize, now: Timestamp) -> usize {
    let fakes: Vec<SignedDescriptor> = (0..count)
        .map(|n| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(n as u64).to_le_bytes());
            let identity = Identity::from_seed(seed);
            let url = PeerUrl::parse(&format!("https://fake{n}.test.example")).expect("url");
            Descriptor {
                url,
                key: identity.public_key(),
                version: "0.3.0".into(),
                weight: 1.0,
                issued_at: now,
                leaving: false,
                pool: Vec::new(),
            }
            .sign(&identity)
            .expect("sign")
            .to_signed()
        })
        .collect();
    let before = core.stats().descriptors_accepted;
    for chunk in fakes.chunks(MAX_DESCRIPTORS_PER_MESSAGE) {
        let _ = core.handle_gossip(GossipRequest::push(chunk.to_vec()), ip(200), now);
    }
    usize::try_from(core.stats().descriptors_accepted - before).unwrap_or(usize::MAX)
}

fn healthy_key(key: PublicKey) -> ProbeOutcome {
    ProbeOutcome::healthy(key, Duration::from_millis(30), Some(ip(9)))
}

fn is_listed(core: &Core, key: &PublicKey, now: Timestamp) -> bool {
    core.listed_keys(now).contains(key)
}

/// Good probes of `url` until `key` is listed; how many it took (at most `max`).
fn probes_until_listed(
    core: &mut Core,
    url: &PeerUrl,
    key: PublicKey,
    from: u64,
    max: u64,
) -> Option<u64> {
    let outcome = healthy_key(key);
    (1..=max).find(|k| {
        core.on_probe_result(url, outcome.clone(), at(from + k));
        is_listed(core, &key, at(from + k))
    })
}

#[test]
fn a_peers_toml_node_that_missed_two_probes_survives_a_burst_of_fakes() {
    let mut a = core(0, &[1]);
    let b = identity(1).public_key();
    a.merge(&descriptor(1, &url(1), T0, false), T0).expect("b");
    assert_eq!(probes_until_listed(&mut a, &url(1), b, 0, 20), Some(1));
    // Healthy for a while, then a short outage: two probes missed.
    probes(&mut a, &url(1), &healthy_key(b), 100);
    probes(&mut a, &url(1), &ProbeOutcome::unreachable(None), 2);
    assert!(!is_listed(&a, &b, at(10)));
    // 1,030 fakes: more than the cap of 1,024 holds.
    let taken = flood(&mut a, 1_030, at(10));
    assert_eq!(taken, 1_023, "the cap less B");
    assert!(
        a.held(&b).is_some(),
        "B was evicted for an unproven newcomer"
    );
    assert_eq!(
        a.merge(&descriptor(1, &url(1), T0, false), at(10)),
        Err(MergeError::Replayed),
        "B's current descriptor is held, not refused as forgotten"
    );
    // Listed again after as many good probes as any node with its record would need.
    let back = probes_until_listed(&mut a, &url(1), b, 200, 5);
    assert_eq!(back, Some(4), "B not listed again within a few probes");
}

#[test]
fn a_node_that_was_listed_survives_a_burst_of_fakes() {
    let mut a = core(0, &[]);
    let b = identity(1).public_key();
    a.merge(&descriptor(1, &url(1), T0, false), T0).expect("b");
    let listed_after = probes_until_listed(&mut a, &url(1), b, 0, 30).expect("listed");
    // A gossip round sees it listed.
    a.tick(at(listed_after + 1), &mut rng());
    probes(&mut a, &url(1), &healthy_key(b), 100);
    probes(&mut a, &url(1), &ProbeOutcome::unreachable(None), 2);
    assert!(!is_listed(&a, &b, at(40)));
    flood(&mut a, 1_030, at(40));
    assert!(a.held(&b).is_some(), "a node once listed was evicted");
    assert_eq!(probes_until_listed(&mut a, &url(1), b, 200, 5), Some(4));
    // What it earned survives a restart of the observer too.
    let state = a.snapshot();
    assert!(
        state
            .members
            .iter()
            .any(|m| m.descriptor.key == b.to_base64() && m.ever_listed)
    );
}

#[test]
fn making_room_is_not_forgetting() {
    let now = at(50_000);
    let mut a = core_with(0, &[], |c| c.max_members = 3);
    a.merge(&descriptor(1, &url(1), T0, false), now)
        .expect("merge");
    for n in 2..=3 {
        a.merge(&descriptor(n, &url(n), now, false), now)
            .expect("merge");
    }
    probes(&mut a, &url(2), &ProbeOutcome::unreachable(None), 1);
    assert_eq!(
        a.merge(&descriptor(4, &url(4), now, false), now),
        Ok(MergeOutcome::Added)
    );
    let two = identity(2).public_key();
    assert!(a.held(&two).is_none(), "node 2 made room");
    // Node 2 pushing its same descriptor is judged afresh, not refused as forgotten:
    // node 3 fails now, so node 2 takes its place.
    probes(&mut a, &url(3), &ProbeOutcome::unreachable(None), 1);
    assert_eq!(
        a.merge(&descriptor(2, &url(2), now, false), now),
        Ok(MergeOutcome::Added)
    );
    let three = identity(3).public_key();
    assert!(a.held(&three).is_none(), "node 3 made room");
    // While the list is full, a digest naming node 3 does not fetch it back (that would
    // evict another member at once)...
    let mut c = core(5, &[]);
    c.merge(&descriptor(3, &url(3), now, false), now)
        .expect("c");
    let wants = |a: &mut Core, c: &Core, t: Timestamp| {
        let diff = GossipResponse::Diff {
            buckets: (0..BUCKETS as u8).collect(),
            entries: c.entries_in(&[true; BUCKETS]),
        };
        match a.handle_gossip_response(c.url(), diff, t, &mut rng()) {
            Ok(Some(GossipRequest::Sync { want, .. })) => want,
            _ => Vec::new(),
        }
    };
    assert!(!wants(&mut a, &c, now).contains(&three));
    // ...but once there is room (node 1's descriptor expired), it is fetched like any other.
    let later = at(86_500);
    a.prune(later);
    assert!(a.held(&identity(1).public_key()).is_none());
    assert!(wants(&mut a, &c, later).contains(&three));
}
