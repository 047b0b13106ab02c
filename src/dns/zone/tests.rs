//! Tests of the zone's answers, with a seeded random source.

use std::collections::HashMap;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::federation::PublicKey;

fn node(i: u8, weight: f64, addresses: &[&str]) -> PoolNode {
    PoolNode {
        key: PublicKey::from_bytes([i; 32]),
        url: format!("http://n{i}.example"),
        weight,
        addresses: addresses.iter().map(|a| a.parse().expect("ip")).collect(),
    }
}

fn zone(allow_private: bool) -> Zone {
    Zone::new(
        "Pool.Badges.Example.org",
        60,
        &["ns1.example.org".into(), "ns2.example.net.".into()],
        7,
        allow_private,
    )
    .expect("zone")
}

fn ask(zone: &Zone, name: &str, qtype: RecordType, nodes: &[PoolNode], seed: u64) -> Answer {
    let name = Name::from_ascii(name).expect("name");
    zone.answer(
        &LowerName::new(&name),
        &name,
        qtype,
        DNSClass::IN,
        nodes,
        &mut StdRng::seed_from_u64(seed),
    )
}

fn addresses(answer: &Answer) -> Vec<IpAddr> {
    answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

fn public_nodes() -> Vec<PoolNode> {
    (1..=10)
        .map(|i| {
            let v4 = format!("198.{i}.0.1");
            let v6 = format!("2001:{i}::1");
            node(i, 1.0, &[v4.as_str(), v6.as_str()])
        })
        .collect()
}

#[test]
fn the_zone_name_answers_four_addresses_of_distinct_nodes_with_the_ttl() {
    let zone = zone(false);
    let nodes = public_nodes();
    for seed in 0..50 {
        let answer = ask(
            &zone,
            "pool.badges.example.org.",
            RecordType::A,
            &nodes,
            seed,
        );
        assert_eq!(answer.code, ResponseCode::NoError);
        assert!(answer.authoritative);
        assert_eq!(answer.answers.len(), MAX_ANSWERS);
        assert!(answer.authority.is_empty());
        let mut chosen = answer.chosen.clone();
        chosen.dedup();
        chosen.sort_unstable();
        chosen.dedup();
        assert_eq!(chosen.len(), MAX_ANSWERS, "distinct nodes");
        for (record, index) in answer.answers.iter().zip(&answer.chosen) {
            assert_eq!(record.ttl, 60);
            assert_eq!(record.name.to_string(), "pool.badges.example.org.");
            assert_eq!(
                Some(
                    &addresses(&Answer {
                        answers: vec![record.clone()],
                        ..answer.clone()
                    })[0]
                ),
                nodes[*index].addresses.first()
            );
        }
    }
    let six = ask(
        &zone,
        "pool.badges.example.org.",
        RecordType::AAAA,
        &nodes,
        1,
    );
    assert_eq!(six.answers.len(), MAX_ANSWERS);
    assert!(addresses(&six).iter().all(IpAddr::is_ipv6));
}

#[test]
fn names_match_whatever_their_case_and_the_question_is_echoed() {
    let zone = zone(false);
    let answer = ask(
        &zone,
        "POOL.badges.EXAMPLE.org.",
        RecordType::A,
        &public_nodes(),
        3,
    );
    assert_eq!(answer.answers.len(), MAX_ANSWERS);
    assert_eq!(
        answer.answers[0].name.to_string(),
        "POOL.badges.EXAMPLE.org."
    );
}

#[test]
fn fewer_nodes_fewer_addresses_and_none_is_nodata_with_the_soa() {
    let zone = zone(false);
    let nodes = public_nodes();
    let two = ask(
        &zone,
        "pool.badges.example.org.",
        RecordType::A,
        &nodes[..2],
        1,
    );
    assert_eq!(two.answers.len(), 2);
    let none = ask(&zone, "pool.badges.example.org.", RecordType::A, &[], 1);
    assert_eq!(none.code, ResponseCode::NoError);
    assert!(none.answers.is_empty());
    assert_eq!(none.authority.len(), 1);
    assert_eq!(none.authority[0].record_type(), RecordType::SOA);
    // Nodes with only IPv4 addresses give no AAAA.
    let v4_only = vec![node(1, 1.0, &["198.1.0.1"])];
    let aaaa = ask(
        &zone,
        "pool.badges.example.org.",
        RecordType::AAAA,
        &v4_only,
        1,
    );
    assert!(aaaa.answers.is_empty());
}

#[test]
fn one_address_per_ipv4_24_and_ipv6_48() {
    let zone = zone(false);
    let nodes: Vec<PoolNode> = (1..=6)
        .map(|i| {
            let v4 = format!("198.51.7.{i}");
            let v6 = format!("2001:db9:7:{i}::1");
            node(i, 1.0, &[v4.as_str(), v6.as_str()])
        })
        .chain([node(9, 1.0, &["203.1.1.1", "2001:aaaa::1"])])
        .collect();
    for seed in 0..50 {
        let a = ask(
            &zone,
            "pool.badges.example.org.",
            RecordType::A,
            &nodes,
            seed,
        );
        assert_eq!(a.answers.len(), 2, "one of the /24 and the other node");
        let aaaa = ask(
            &zone,
            "pool.badges.example.org.",
            RecordType::AAAA,
            &nodes,
            seed,
        );
        assert_eq!(aaaa.answers.len(), 2, "one of the /48 and the other node");
    }
    // Loopback nodes of a local cluster are exempt only with --allow-private-peers.
    let local: Vec<PoolNode> = (2..=5)
        .map(|i| node(i, 1.0, &[format!("127.0.0.{i}").as_str()]))
        .collect();
    let strict = ask(&zone, "pool.badges.example.org.", RecordType::A, &local, 1);
    assert_eq!(strict.answers.len(), 1);
    let private = ask(
        &super::tests::zone(true),
        "pool.badges.example.org.",
        RecordType::A,
        &local,
        1,
    );
    assert_eq!(private.answers.len(), 4);
}

#[test]
fn nodes_are_drawn_in_proportion_to_their_weight() {
    let nodes = vec![
        node(1, 3.0, &["198.1.0.1"]),
        node(2, 1.0, &["198.2.0.1"]),
        node(3, 0.01, &["198.3.0.1"]),
    ];
    let mut rng = StdRng::seed_from_u64(11);
    let mut first: HashMap<usize, u32> = HashMap::new();
    const DRAWS: u32 = 20_000;
    for _ in 0..DRAWS {
        let picked = choose(&nodes, false, false, &mut rng);
        assert_eq!(picked.len(), 3, "all three, in some order");
        *first.entry(picked[0].0).or_default() += 1;
    }
    // P(first) is w / sum(w): 0.747, 0.249, 0.0025.
    let share = |i: usize| f64::from(first.get(&i).copied().unwrap_or(0)) / f64::from(DRAWS);
    assert!((share(0) - 0.747).abs() < 0.02, "{first:?}");
    assert!((share(1) - 0.249).abs() < 0.02, "{first:?}");
    assert!(share(2) < 0.01, "{first:?}");
}

#[test]
fn soa_ns_nxdomain_refused_and_no_any() {
    let zone = zone(false);
    let nodes = public_nodes();
    let soa = ask(
        &zone,
        "pool.badges.example.org.",
        RecordType::SOA,
        &nodes,
        1,
    );
    assert_eq!(soa.code, ResponseCode::NoError);
    assert_eq!(soa.answers.len(), 1);
    match &soa.answers[0].data {
        RData::SOA(soa) => {
            assert_eq!(soa.mname.to_string(), "ns1.example.org.");
            let rname = soa.rname.to_string().to_lowercase();
            assert_eq!(rname, "hostmaster.pool.badges.example.org.");
            assert_eq!(soa.minimum, 60);
            assert_eq!(soa.serial, 7);
        }
        other => panic!("not a SOA: {other:?}"),
    }
    let ns = ask(&zone, "pool.badges.example.org.", RecordType::NS, &nodes, 1);
    let names: Vec<String> = ns
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::NS(ns) => ns.0.to_string(),
            other => panic!("not NS: {other:?}"),
        })
        .collect();
    assert_eq!(names, ["ns1.example.org.", "ns2.example.net."]);

    let below = ask(
        &zone,
        "www.pool.badges.example.org.",
        RecordType::A,
        &nodes,
        1,
    );
    assert_eq!(below.code, ResponseCode::NXDomain);
    assert!(below.authoritative);
    assert!(below.answers.is_empty());
    assert_eq!(below.authority[0].record_type(), RecordType::SOA);

    for outside in ["badges.example.org.", "example.com.", "."] {
        let refused = ask(&zone, outside, RecordType::A, &nodes, 1);
        assert_eq!(refused.code, ResponseCode::Refused, "{outside}");
        assert!(!refused.authoritative);
        assert!(refused.answers.is_empty() && refused.authority.is_empty());
    }
    let any = ask(
        &zone,
        "pool.badges.example.org.",
        RecordType::ANY,
        &nodes,
        1,
    );
    assert_eq!(any.code, ResponseCode::NotImp);
    assert!(any.answers.is_empty());
    let mx = ask(&zone, "pool.badges.example.org.", RecordType::MX, &nodes, 1);
    assert_eq!(mx.code, ResponseCode::NoError);
    assert!(mx.answers.is_empty());
    assert_eq!(mx.authority.len(), 1);

    let name = Name::from_ascii("pool.badges.example.org.").expect("name");
    let chaos = zone.answer(
        &LowerName::new(&name),
        &name,
        RecordType::TXT,
        DNSClass::CH,
        &nodes,
        &mut StdRng::seed_from_u64(1),
    );
    assert_eq!(chaos.code, ResponseCode::Refused);
}

#[test]
fn bad_zone_flags_are_named() {
    assert!(matches!(
        Zone::new("", 60, &[], 1, false),
        Err(ZoneError::Zone(_))
    ));
    assert!(matches!(
        Zone::new("a..b", 60, &[], 1, false),
        Err(ZoneError::Zone(_))
    ));
    assert!(matches!(
        Zone::new("pool.example", 60, &["bad..name".into()], 1, false),
        Err(ZoneError::Nameserver(_))
    ));
    let bare = Zone::new("pool.example", 60, &[], 1, false).expect("no name servers");
    let soa = ask(&bare, "pool.example.", RecordType::SOA, &[], 1);
    match &soa.answers[0].data {
        RData::SOA(soa) => assert_eq!(soa.mname.to_string(), "pool.example."),
        other => panic!("not a SOA: {other:?}"),
    }
}
