//! Pools named in `peers.toml`: when the core asks one, whom at its addresses, and that
//! what they teach makes ordinary members.

use super::super::super::peers::{PoolScheme, PoolSeed};
use super::*;

fn pool() -> PoolSeed {
    PoolSeed {
        name: "pool.test".into(),
        scheme: PoolScheme::Http,
        port: 8080,
        nameserver: None,
        line: 1,
    }
}

/// Whether `tick` at round `round` (of 10 s) asks the pool.
fn asks(core: &mut Core, round: u64) -> bool {
    core.tick(at(round * 10), &mut rng())
        .iter()
        .any(|action| matches!(action, Action::AskPool { pool: p, .. } if *p == pool()))
}

#[test]
fn a_pool_is_asked_with_the_round_s_digest_and_not_again_until_reported() {
    let mut a = core(0, &[]);
    a.set_pool_seeds(vec![pool()]);
    let digest = a.digest();
    let actions = a.tick(T0, &mut rng());
    assert_eq!(
        actions,
        vec![Action::AskPool {
            pool: pool(),
            request: GossipRequest::Digest {
                v: PROTOCOL_VERSION,
                buckets: digest,
            },
        }]
    );
    assert!(!asks(&mut a, 1), "a round under way is not started again");
    assert_eq!(a.on_pool_result(&pool(), false, at(10)), 1);
    assert!(asks(&mut a, 2), "reported: asked in the next round");
}

#[test]
fn a_pool_that_gives_no_seed_is_asked_ever_less_often_but_never_given_up() {
    let mut a = core(0, &[]);
    a.set_pool_seeds(vec![pool()]);
    let mut asked_in = Vec::new();
    for round in 0..40 {
        if asks(&mut a, round) {
            asked_in.push(round);
            a.on_pool_result(&pool(), false, at(round * 10));
        }
    }
    // Three failures a round apart, then gaps of 2, 4, 8, 16 rounds...
    assert_eq!(asked_in, [0, 1, 2, 3, 5, 9, 17, 33]);
    // ...until an answer ends the backoff: then three failures a round apart again.
    let mut b = core(0, &[]);
    b.set_pool_seeds(vec![pool()]);
    for round in 0..4 {
        assert!(asks(&mut b, round), "round {round}");
        b.on_pool_result(&pool(), false, at(round * 10));
    }
    assert!(!asks(&mut b, 4), "backed off");
    assert!(asks(&mut b, 5));
    assert_eq!(b.on_pool_result(&pool(), true, at(50)), 0);
    for round in 6..10 {
        assert!(asks(&mut b, round), "round {round}: asked while alone");
        b.on_pool_result(&pool(), false, at(round * 10));
    }
}

#[test]
fn a_pool_once_answered_is_asked_again_only_while_no_partner_is_healthy() {
    let mut a = core(0, &[]);
    let mut b = core(1, &[]);
    a.set_pool_seeds(vec![pool()]);
    assert!(asks(&mut a, 0));
    // b answered at a pool address: a knows it, but has not probed it yet.
    exchange(&mut a, &mut b, ip(1), at(1));
    a.on_pool_result(&pool(), true, at(1));
    assert!(asks(&mut a, 1), "no healthy partner yet: asked again");
    a.on_pool_result(&pool(), true, at(11));
    let b_url = b.url().clone();
    let outcome = healthy(&b);
    a.on_probe_result(&b_url, outcome.clone(), at(12));
    for round in 2..6 {
        assert!(!asks(&mut a, round), "round {round}: b is healthy");
    }
    // b fails its probes: a is alone again and goes back to the pool.
    for k in 0..3 {
        a.on_probe_result(&b_url, ProbeOutcome::unreachable(None), at(60 + k));
    }
    assert!(asks(&mut a, 7));
}

#[test]
fn nodes_learned_through_a_pool_are_ordinary_members() {
    let mut a = core(0, &[]);
    let mut b = core(1, &[]);
    a.set_pool_seeds(vec![pool()]);
    let pool_url = pool().url_for(ip(1)).expect("url");
    exchange(&mut a, &mut b, ip(1), T0);
    assert!(
        !a.is_seed(&pool_url),
        "a pool address is not a peers.toml node"
    );
    let members = a.members(T0);
    let member = members
        .iter()
        .find(|m| m.url == b.url().as_str())
        .expect("b learned");
    assert!(!member.seed, "{member:?}");
    assert_eq!(
        member.score, 0.0,
        "starts in probation like any gossiped node"
    );
    assert!(
        members.iter().all(|m| m.url != pool_url.as_str()),
        "the address asked is no member"
    );
}

#[test]
fn the_urls_asked_are_each_address_once_without_this_node_at_most_eight() {
    let own_ip: IpAddr = "192.0.2.9".parse().expect("ip");
    let a = core_with(0, &[], |settings| {
        settings.public_url = PeerUrl::parse("http://192.0.2.10:8080").expect("url");
        settings.pool_addresses = vec![own_ip];
    });
    let v4 = |last: u8| IpAddr::from([192, 0, 2, last]);
    let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
    let v6: IpAddr = "2001:db8::1".parse().expect("ip");
    let mut resolved = vec![v4(1), own_ip, mapped, v4(10), v6, v4(1)];
    resolved.extend((20..30).map(v4));
    let urls: Vec<String> = a
        .pool_seed_urls(&pool(), &resolved)
        .iter()
        .map(|u| u.as_str().to_owned())
        .collect();
    assert_eq!(
        urls,
        [
            "http://192.0.2.1:8080",
            "http://[2001:db8::1]:8080",
            "http://192.0.2.20:8080",
            "http://192.0.2.21:8080",
            "http://192.0.2.22:8080",
            "http://192.0.2.23:8080",
            "http://192.0.2.24:8080",
            "http://192.0.2.25:8080",
        ]
    );
    assert!(a.pool_seed_urls(&pool(), &[own_ip]).is_empty());
}
