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

#[test]
fn peers_naming_this_node_are_skipped() {
    let mut a = core(0, &[0, 1]);
    let actions = a.tick(T0, &mut rng());
    assert_eq!(
        actions,
        vec![Action::Gossip {
            to: url(1),
            request: GossipRequest::Digest {
                v: PROTOCOL_VERSION,
                buckets: a.digest()
            }
        }]
    );
}

#[test]
fn two_nodes_meet_through_a_seed_then_go_quiet() {
    let mut a = core(0, &[1]);
    let mut b = core(1, &[]);
    assert_eq!(exchange(&mut a, &mut b, ip(0), T0), 2);
    assert_eq!(a.held(&b.public_key()), Some(T0));
    assert_eq!(b.held(&a.public_key()), Some(T0));
    assert_eq!(a.digest(), b.digest());
    // Nothing changed: one small round trip.
    let request = GossipRequest::Digest {
        v: PROTOCOL_VERSION,
        buckets: a.digest(),
    };
    let bytes = serde_json::to_vec(&request).expect("json").len();
    assert!(bytes < 300, "{bytes}");
    assert_eq!(
        b.handle_gossip(request, ip(0), T0),
        Ok(GossipResponse::InSync)
    );
}

#[test]
fn newer_descriptors_replace_older_ones_and_old_ones_are_refused_without_change() {
    let mut a = core(0, &[]);
    let u = url(5);
    assert_eq!(
        a.merge(&descriptor(5, &u, at(10), false), at(10)),
        Ok(MergeOutcome::Added)
    );
    assert_eq!(
        a.merge(&descriptor(5, &u, at(20), false), at(20)),
        Ok(MergeOutcome::Updated)
    );
    let before = fingerprint(&mut a);
    assert_eq!(
        a.merge(&descriptor(5, &u, at(10), false), at(20)),
        Err(MergeError::Stale)
    );
    assert_eq!(
        a.merge(&descriptor(5, &u, at(20), false), at(20)),
        Err(MergeError::Replayed)
    );
    // Same time, different content (another URL) signed by the same key: still not taken.
    assert_eq!(
        a.merge(&descriptor(5, &url(6), at(20), false), at(20)),
        Err(MergeError::Replayed)
    );
    assert_eq!(fingerprint(&mut a), before);
    assert_eq!(a.stats().descriptors_rejected.get("stale"), Some(&1));
    assert_eq!(a.stats().descriptors_rejected.get("replayed"), Some(&2));
}

#[test]
fn forged_malformed_expired_and_future_descriptors_change_nothing() {
    let mut a = core(0, &[]);
    let now = at(100);
    let before = fingerprint(&mut a);
    let good = descriptor(5, &url(5), now, false);
    let mut forged = good.clone();
    forged.url = url(6).to_string();
    let mut bad_key = good.clone();
    bad_key.key = "not a key".into();
    let mut bad_sig = good.clone();
    bad_sig.sig = "x".into();
    let cases = [
        (forged, "bad_signature"),
        (bad_key, "malformed"),
        (bad_sig, "malformed"),
        (
            descriptor(5, &url(5), at(100 + 301), false),
            "from_the_future",
        ),
        (
            descriptor(
                5,
                &url(5),
                T0.saturating_sub(Duration::from_secs(86_401)),
                false,
            ),
            "expired",
        ),
    ];
    for (d, kind) in cases {
        assert_eq!(a.merge(&d, now).map_err(|e| e.kind()), Err(kind));
    }
    assert_eq!(fingerprint(&mut a), before);
    assert_eq!(a.merge(&good, now), Ok(MergeOutcome::Added));
}

#[test]
fn a_forged_descriptor_stops_the_message_and_costs_the_sender_its_budget() {
    let mut a = core_with(0, &[], |c| c.gossip_burst = 5);
    let good = descriptor(5, &url(5), T0, false);
    let mut forged = descriptor(6, &url(6), T0, false);
    forged.weight = 2.0;
    let after = descriptor(7, &url(7), T0, false);
    let request = GossipRequest::push(vec![good, forged, after]);
    assert_eq!(
        a.handle_gossip(request, ip(1), T0),
        Err(GossipError::Forged { index: 1 })
    );
    assert!(
        a.held(&identity(5).public_key()).is_some(),
        "before the forgery: merged"
    );
    assert!(
        a.held(&identity(7).public_key()).is_none(),
        "after the forgery: not looked at"
    );
    // The sender's bucket is empty now.
    let digest = GossipRequest::Digest {
        v: PROTOCOL_VERSION,
        buckets: a.digest(),
    };
    assert!(matches!(
        a.handle_gossip(digest, ip(1), T0),
        Err(GossipError::RateLimited { .. })
    ));
}

#[test]
fn oversized_messages_are_refused_whole() {
    let mut a = core(0, &[]);
    let before = fingerprint(&mut a);
    let many: Vec<SignedDescriptor> = (0..=MAX_DESCRIPTORS_PER_MESSAGE)
        .map(|i| {
            descriptor(
                1,
                &url(1),
                T0.saturating_add(Duration::from_millis(i as u64)),
                false,
            )
        })
        .collect();
    let err = a.handle_gossip(GossipRequest::push(many.clone()), ip(1), T0);
    assert_eq!(
        err,
        Err(GossipError::TooLarge {
            what: "push",
            count: 129,
            max: 128
        })
    );
    let err = a.handle_gossip_response(&url(1), GossipResponse::Descriptors(many), T0, &mut rng());
    assert!(matches!(err, Err(GossipError::TooLarge { .. })));
    let entries = vec![Entry(identity(1).public_key(), T0); 4097];
    let err = a.handle_gossip_response(
        &url(1),
        GossipResponse::Diff {
            buckets: vec![0],
            entries,
        },
        T0,
        &mut rng(),
    );
    assert!(matches!(err, Err(GossipError::TooLarge { .. })));
    let err = a.handle_gossip_response(
        &url(1),
        GossipResponse::Diff {
            buckets: vec![16],
            entries: vec![],
        },
        T0,
        &mut rng(),
    );
    assert_eq!(err, Err(GossipError::BadBucket(16)));
    let err = a.handle_gossip(
        GossipRequest::Digest {
            v: 2,
            buckets: SetDigest::default(),
        },
        ip(1),
        T0,
    );
    assert_eq!(err, Err(GossipError::UnsupportedVersion(2)));
    assert_eq!(fingerprint(&mut a), before);
}

#[test]
fn each_source_is_rate_limited() {
    let mut a = core_with(0, &[], |c| {
        c.gossip_burst = 3;
        c.gossip_requests_per_interval = 1;
    });
    let digest = GossipRequest::Digest {
        v: PROTOCOL_VERSION,
        buckets: SetDigest::default(),
    };
    for _ in 0..3 {
        assert!(a.handle_gossip(digest.clone(), ip(1), T0).is_ok());
    }
    let err = a
        .handle_gossip(digest.clone(), ip(1), T0)
        .expect_err("limited");
    assert!(matches!(err, GossipError::RateLimited { .. }), "{err}");
    assert!(a.handle_gossip(digest.clone(), ip(2), T0).is_ok());
    assert!(a.handle_gossip(digest, ip(1), at(10)).is_ok());
    assert_eq!(a.stats().requests_refused.get("rate_limited"), Some(&1));
}

#[test]
fn a_descriptor_signed_with_our_key_makes_us_reissue_later() {
    let mut a = core(0, &[]);
    let copy = descriptor(0, &url(0), at(50), false);
    assert_eq!(a.merge(&copy, at(40)), Ok(MergeOutcome::OwnReissued));
    assert!(a.own_descriptor().issued_at() > at(50));
    assert_eq!(a.own_descriptor().url(), &url(0));
    assert_eq!(a.stats().own_key_seen_elsewhere, 1);
    // Older copies of our own descriptor are just stale.
    assert_eq!(
        a.merge(&descriptor(0, &url(0), at(1), false), at(40)),
        Err(MergeError::Stale)
    );
}

#[test]
fn url_claims_are_checked() {
    let mut pinned = seed(3);
    pinned.key = Some(identity(3).public_key());
    let mut a = Core::new(identity(0), config(0), vec![pinned], T0).expect("core");
    // Someone else claiming our URL, or a pinned URL.
    assert_eq!(
        a.merge(&descriptor(5, &url(0), T0, false), T0),
        Err(MergeError::ClaimsOwnUrl)
    );
    assert!(matches!(
        a.merge(&descriptor(6, &url(3), T0, false), T0),
        Err(MergeError::PinnedKeyMismatch { .. })
    ));
    assert_eq!(
        a.merge(&descriptor(3, &url(3), T0, false), T0),
        Ok(MergeOutcome::Added)
    );
    assert_eq!(a.member_count(), 1);
    // Refused descriptors are not fetched again from a peer that holds them; a newer one
    // of the same key is judged afresh.
    let peer_entries = [5, 6, 7].map(|i| Entry(identity(i).public_key(), T0));
    let follow_up = a.reconcile(&[true; BUCKETS], &peer_entries, T0, &mut rng());
    let Some(GossipRequest::Sync { want, .. }) = follow_up else {
        panic!("a sync: {follow_up:?}")
    };
    assert_eq!(want, vec![identity(7).public_key()]);
    assert_eq!(
        a.merge(&descriptor(6, &url(6), at(1), false), at(1)),
        Ok(MergeOutcome::Added)
    );
}

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
            Action::Gossip { .. } => None,
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
        assert_eq!(member.score, 4.5);
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
    // The evicted descriptor gossiped back is refused; a newer one of that node is not.
    probes(&mut a, &url(3), &ProbeOutcome::unreachable(None), 1);
    assert_eq!(
        a.merge(&descriptor(2, &url(2), T0, false), T0),
        Err(MergeError::Forgotten)
    );
    assert_eq!(
        a.merge(&descriptor(2, &url(2), at(1), false), at(1)),
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
            Action::Probe { url } => url.clone(),
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
    let before = restarted.members(at(60))[1].score;
    assert!(before < -9.0, "{before}");
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
    // Without the restart the same node climbs back from its failures.
    let climb = probes_until_listed(&mut still_down, 1, at(61), 30).expect("listed");
    assert!(climb >= 15, "{climb} good probes");
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
