//! Tests of descriptors: canonical bytes, signatures, freshness, the pool field and the
//! signature cache.

use super::*;

const NOW: Timestamp = Timestamp::from_unix_ms(1_800_000_000_000);

fn freshness() -> Freshness {
    Freshness {
        max_clock_skew: Duration::from_secs(300),
        max_age: Duration::from_secs(86_400),
    }
}

fn signed(identity: &Identity) -> SignedDescriptor {
    Descriptor {
        url: PeerUrl::parse("https://a.example").expect("url"),
        key: identity.public_key(),
        version: "0.3.0".into(),
        weight: 1.5,
        issued_at: NOW,
        leaving: false,
        pool: Vec::new(),
    }
    .sign(identity)
    .expect("sign")
    .to_signed()
}

#[test]
fn round_trips_through_json_and_verifies() {
    let identity = Identity::from_seed([1; 32]);
    let wire = signed(&identity);
    let json = serde_json::to_string(&wire).expect("json");
    let back: SignedDescriptor = serde_json::from_str(&json).expect("parse");
    let verified = back.verify(NOW, &freshness(), None).expect("valid");
    assert_eq!(verified.key(), identity.public_key());
    assert_eq!(verified.url().as_str(), "https://a.example");
    assert_eq!(verified.to_signed(), wire);
}

#[test]
fn every_altered_field_breaks_the_signature() {
    let identity = Identity::from_seed([2; 32]);
    let wire = signed(&identity);
    let other = Identity::from_seed([3; 32]).public_key().to_base64();
    type Alteration = Box<dyn Fn(&mut SignedDescriptor)>;
    let alterations: Vec<Alteration> = vec![
        Box::new(|d| d.url = "https://b.example".into()),
        Box::new(move |d| d.key = other.clone()),
        Box::new(|d| d.version = "0.3.1".into()),
        Box::new(|d| d.weight = 1.25),
        Box::new(|d| d.issued_at += 1),
        Box::new(|d| d.leaving = true),
    ];
    for alter in alterations {
        let mut d = wire.clone();
        alter(&mut d);
        assert_eq!(
            d.verify(NOW, &freshness(), None),
            Err(DescriptorError::BadSignature),
            "{d:?}"
        );
    }
}

#[test]
fn limits_are_checked_before_the_signature() {
    let identity = Identity::from_seed([4; 32]);
    let wire = signed(&identity);
    let check = |alter: &dyn Fn(&mut SignedDescriptor)| {
        let mut d = wire.clone();
        alter(&mut d);
        d.verify(NOW, &freshness(), None)
            .expect_err("must fail")
            .kind()
    };
    assert_eq!(
        check(&|d| d.url = format!("https://a.example/{}", "x".repeat(300))),
        "malformed"
    );
    assert_eq!(check(&|d| d.url = "https://a.example/".into()), "malformed");
    assert_eq!(check(&|d| d.url = "ftp://a.example".into()), "malformed");
    assert_eq!(check(&|d| d.version = "x".repeat(33)), "malformed");
    assert_eq!(check(&|d| d.version = "<script>".into()), "malformed");
    assert_eq!(check(&|d| d.version = String::new()), "malformed");
    assert_eq!(check(&|d| d.weight = 0.0), "weight_out_of_range");
    assert_eq!(check(&|d| d.weight = 101.0), "weight_out_of_range");
    assert_eq!(check(&|d| d.weight = -1.0), "weight_out_of_range");
    assert_eq!(check(&|d| d.weight = 1.0005), "weight_out_of_range");
    assert_eq!(check(&|d| d.key = "short".into()), "malformed");
    assert_eq!(check(&|d| d.sig = "AAAA".into()), "malformed");
    assert_eq!(check(&|d| d.sig = "!".repeat(88)), "malformed");
    assert_eq!(
        check(&|d| d.issued_at = NOW.as_unix_ms() + 301_000),
        "from_the_future"
    );
    assert_eq!(
        check(&|d| d.issued_at = NOW.as_unix_ms() - 86_401_000),
        "expired"
    );
    // A weak (small-order) key can't be verified against.
    let mut weak = [0u8; 32];
    weak[0] = 1;
    assert_eq!(
        check(&|d| d.key = PublicKey::from_bytes(weak).to_base64()),
        "malformed"
    );
    // Within skew and age: still fine (the signature covers the issue time, so the
    // original is used here).
    assert!(
        wire.verify(
            NOW.saturating_add(Duration::from_secs(86_000)),
            &freshness(),
            None
        )
        .is_ok()
    );
}

#[test]
fn weights_survive_any_json_float_rounding() {
    let identity = Identity::from_seed([8; 32]);
    let mut d = Descriptor {
        url: PeerUrl::parse("https://a.example").expect("url"),
        key: identity.public_key(),
        version: "1".into(),
        weight: 0.1 + 0.2,
        issued_at: NOW,
        leaving: false,
        pool: Vec::new(),
    };
    // 0.30000000000000004 is 300 thousandths as far as signing goes; 0.3005 is refused.
    assert!(d.clone().sign(&identity).is_ok());
    d.weight = 0.3005;
    assert_eq!(
        d.clone().sign(&identity).err().map(|e| e.kind()),
        Some("weight_out_of_range")
    );
    d.weight = 33.333;
    let mut wire = d.sign(&identity).expect("sign").to_signed();
    // A parser one bit off still yields the same signed thousandths.
    wire.weight = f64::from_bits(wire.weight.to_bits() + 1);
    assert!(wire.verify(NOW, &freshness(), None).is_ok());
}

#[test]
fn unknown_fields_are_refused() {
    let identity = Identity::from_seed([5; 32]);
    let mut value = serde_json::to_value(signed(&identity)).expect("json");
    value["extra"] = serde_json::json!("unsigned data");
    assert!(serde_json::from_value::<SignedDescriptor>(value).is_err());
}

#[test]
fn cache_only_remembers_good_signatures() {
    let cache = SignatureCache::new();
    let identity = Identity::from_seed([6; 32]);
    let wire = signed(&identity);
    assert!(wire.verify(NOW, &freshness(), Some(&cache)).is_ok());
    assert!(wire.verify(NOW, &freshness(), Some(&cache)).is_ok());
    let mut forged = wire.clone();
    forged.url = "https://evil.example".into();
    assert_eq!(
        forged.verify(NOW, &freshness(), Some(&cache)),
        Err(DescriptorError::BadSignature)
    );
    // A forged signature stays forged on the second try too.
    assert_eq!(
        forged.verify(NOW, &freshness(), Some(&cache)),
        Err(DescriptorError::BadSignature)
    );
}

#[test]
fn canonical_bytes_are_pinned() {
    // Changing the encoding invalidates every descriptor in the network: this test
    // makes such a change deliberate.
    let identity = Identity::from_seed([7; 32]);
    let d = Descriptor {
        url: PeerUrl::parse("https://a.example").expect("url"),
        key: identity.public_key(),
        version: "1".into(),
        weight: 1.0,
        issued_at: Timestamp::from_unix_ms(258),
        leaving: true,
        pool: Vec::new(),
    };
    let bytes = d.canonical_bytes();
    let tail = &bytes[DOMAIN.len() + 32..];
    assert_eq!(
        tail,
        [
            &[0, 0, 0, 0, 0, 0, 1, 2][..],
            &[0, 0, 0x03, 0xe8],
            &[1],
            &[0, 17],
            b"https://a.example",
            &[1],
            b"1",
        ]
        .concat()
    );
}

fn pool_descriptor(identity: &Identity, pool: Vec<IpAddr>) -> Descriptor {
    Descriptor {
        url: PeerUrl::parse("https://a.example").expect("url"),
        key: identity.public_key(),
        version: "1".into(),
        weight: 1.0,
        issued_at: Timestamp::from_unix_ms(258),
        leaving: false,
        pool,
    }
}

#[test]
fn without_pool_addresses_json_and_bytes_are_those_of_nodes_without_the_field() {
    let identity = Identity::from_seed([9; 32]);
    let wire = signed(&identity);
    let json = serde_json::to_value(&wire).expect("json");
    assert!(json.get("pool").is_none(), "{json}");
    // What a node without the field sends parses and verifies.
    let mut old = json.clone();
    old.as_object_mut().expect("object").remove("pool");
    let back: SignedDescriptor = serde_json::from_value(old).expect("parse");
    assert!(back.verify(NOW, &freshness(), None).is_ok());
}

#[test]
fn pool_addresses_are_signed_and_checked() {
    let identity = Identity::from_seed([10; 32]);
    let pool: Vec<IpAddr> = vec![
        "192.0.2.7".parse().expect("ip"),
        "2001:db8::7".parse().expect("ip"),
    ];
    let mut d = pool_descriptor(&identity, pool.clone());
    d.issued_at = NOW;
    let wire = d.sign(&identity).expect("sign").to_signed();
    assert_eq!(wire.pool, ["192.0.2.7", "2001:db8::7"]);
    let verified = wire.verify(NOW, &freshness(), None).expect("valid");
    assert_eq!(verified.pool(), &pool[..]);
    // The signature covers the addresses: change, add or drop one and it breaks.
    for alter in [
        vec!["192.0.2.8".to_owned(), "2001:db8::7".to_owned()],
        vec!["192.0.2.7".to_owned()],
        Vec::new(),
    ] {
        let mut forged = wire.clone();
        forged.pool = alter;
        assert_eq!(
            forged.verify(NOW, &freshness(), None),
            Err(DescriptorError::BadSignature)
        );
    }
    let malformed = |pool: Vec<&str>| {
        let mut d = wire.clone();
        d.pool = pool.into_iter().map(str::to_owned).collect();
        d.verify(NOW, &freshness(), None)
            .expect_err("refused")
            .kind()
    };
    assert_eq!(malformed(vec!["example.org"]), "malformed");
    assert_eq!(malformed(vec!["192.0.2.7", "192.0.2.7"]), "malformed");
    assert_eq!(malformed(vec!["::ffff:192.0.2.7"]), "malformed");
    assert_eq!(malformed(vec!["0.0.0.0"]), "malformed");
    assert_eq!(malformed(vec!["224.0.0.1"]), "malformed");
    assert_eq!(malformed(vec!["1".repeat(100).as_str()]), "malformed");
    assert_eq!(
        malformed(vec!["192.0.2.1"; MAX_POOL_ADDRESSES + 1]),
        "malformed"
    );
    let too_many: Vec<IpAddr> = (1..=9).map(|i| IpAddr::from([192, 0, 2, i])).collect();
    assert!(
        pool_descriptor(&identity, too_many)
            .sign(&identity)
            .is_err()
    );
}

#[test]
fn pool_section_of_the_canonical_bytes_is_pinned() {
    let identity = Identity::from_seed([7; 32]);
    let bare = pool_descriptor(&identity, Vec::new()).canonical_bytes();
    let with_pool = pool_descriptor(
        &identity,
        vec!["192.0.2.7".parse().expect("ip"), "::1".parse().expect("ip")],
    )
    .canonical_bytes();
    assert_eq!(&with_pool[..bare.len()], &bare[..]);
    let mut loopback6 = [0u8; 16];
    loopback6[15] = 1;
    assert_eq!(
        &with_pool[bare.len()..],
        [&[1, 2, 4, 192, 0, 2, 7, 6][..], &loopback6].concat()
    );
}
