//! Core tests: meeting by gossip, merging, refusing forged, oversized and throttled messages.

use super::*;

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
fn every_rejected_descriptor_costs_the_sender_the_same() {
    let now = at(100);
    let good = descriptor(5, &url(5), now, false);
    let mut forged = good.clone();
    forged.weight = 2.0;
    let mut bad_padding = good.clone();
    // Base64 of 64 bytes ends in "=="; the same characters without the padding.
    bad_padding.sig = bad_padding.sig.trim_end_matches('=').to_owned();
    let future = descriptor(5, &url(5), at(100 + 301), false);
    for (name, bad) in [
        ("forged", forged),
        ("bad padding", bad_padding),
        ("future", future),
    ] {
        let mut a = core_with(0, &[], |c| c.gossip_burst = 5);
        let after = descriptor(7, &url(7), now, false);
        let refused = a.handle_gossip(GossipRequest::push(vec![bad, after]), ip(1), now);
        assert!(
            matches!(
                refused,
                Err(GossipError::Forged { index: 0 } | GossipError::Invalid { index: 0, .. })
            ),
            "{name}: {refused:?}"
        );
        assert!(a.held(&identity(7).public_key()).is_none(), "{name}");
        let digest = GossipRequest::Digest {
            v: PROTOCOL_VERSION,
            buckets: a.digest(),
        };
        assert!(
            matches!(
                a.handle_gossip(digest, ip(1), now),
                Err(GossipError::RateLimited { .. })
            ),
            "{name} left the sender its budget"
        );
    }
    // Refusals while the list is full cost a token each and no signature check.
    let mut a = core_with(0, &[], |c| {
        c.gossip_burst = 5;
        c.max_members = 1;
    });
    a.merge(&descriptor(1, &url(1), now, false), now)
        .expect("one member");
    let newcomers: Vec<SignedDescriptor> =
        (2..6).map(|n| descriptor(n, &url(n), now, false)).collect();
    let cache = Arc::new(SignatureCache::with_capacity(16));
    a.set_signature_cache(Arc::clone(&cache));
    assert!(
        a.signature_checks(&newcomers).is_empty(),
        "nothing to check"
    );
    assert!(
        a.handle_gossip(GossipRequest::push(newcomers), ip(1), now)
            .is_ok()
    );
    assert_eq!(a.stats().descriptors_rejected.get("full"), Some(&4));
    let digest = GossipRequest::Digest {
        v: PROTOCOL_VERSION,
        buckets: a.digest(),
    };
    assert!(matches!(
        a.handle_gossip(digest, ip(1), now),
        Err(GossipError::RateLimited { .. })
    ));
}
