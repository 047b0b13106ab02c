//! Checks `src/federation/rendezvous.rs` against `tests/vectors/rendezvous.json`, the vectors that the
//! JavaScript tests check `status.js` against too, so node and browser rank nodes alike.

use dockerhub_build_status::federation::rendezvous;
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/rendezvous.json");
    let text = std::fs::read_to_string(path).expect("read tests/vectors/rendezvous.json");
    serde_json::from_str(&text).expect("tests/vectors/rendezvous.json is JSON")
}

fn list<'a>(v: &'a Value, name: &str) -> &'a Vec<Value> {
    let items = v[name].as_array().expect("a list in the vector file");
    assert!(!items.is_empty(), "no {name} vectors");
    items
}

fn text<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} is a string in {v}"))
}

fn hex(v: &Value, name: &str) -> u32 {
    let s = text(v, name);
    u32::from_str_radix(s.trim_start_matches("0x"), 16).expect("a 0x-prefixed hex number")
}

fn number(v: &Value, name: &str) -> f64 {
    v[name]
        .as_f64()
        .unwrap_or_else(|| panic!("{name} is a number in {v}"))
}

#[test]
fn fnv1a32_vectors() {
    let v = vectors();
    let published = list(&v, "fnv1a32")
        .iter()
        .filter(|e| e["source"] == "published")
        .count();
    assert!(published >= 3, "the published FNV-1a vectors are missing");
    for e in list(&v, "fnv1a32") {
        let input = text(e, "input");
        assert_eq!(
            rendezvous::fnv1a32(input.as_bytes()),
            hex(e, "hash"),
            "fnv1a32({input:?})"
        );
    }
}

#[test]
fn fmix32_vectors() {
    let v = vectors();
    for e in list(&v, "fmix32") {
        assert_eq!(
            rendezvous::fmix32(hex(e, "input")),
            hex(e, "output"),
            "fmix32({})",
            text(e, "input")
        );
    }
}

#[test]
fn item_key_vectors() {
    let v = vectors();
    for e in list(&v, "item_keys") {
        assert_eq!(
            rendezvous::item_key(
                text(e, "organization"),
                text(e, "repository"),
                text(e, "tag")
            ),
            text(e, "item_key")
        );
    }
}

#[test]
fn server_hash_vectors() {
    let v = vectors();
    for e in list(&v, "server_hashes") {
        let (url, key) = (text(e, "url"), text(e, "item_key"));
        let joined = format!("{url}\n{key}");
        assert_eq!(rendezvous::fnv1a32(joined.as_bytes()), hex(e, "fnv1a32"));
        let hash = rendezvous::server_hash(url, key);
        assert_eq!(hash, hex(e, "hash"), "server_hash({url:?}, {key:?})");
        // (hash + 0.5) / 2^32 is exact in f64, so it must match to the bit.
        assert_eq!(rendezvous::unit_interval(hash), number(e, "h"));
        // ln() may differ in the last bit between platforms; the ranking vectors make sure
        // no such difference could change an order.
        let expected = number(e, "score_weight_1");
        let got = rendezvous::score(url, key, 1.0);
        assert!(
            (got - expected).abs() <= 1e-12 * expected,
            "score({url:?}, {key:?}) = {got}, expected {expected}"
        );
    }
}

#[test]
fn ranking_vectors() {
    let v = vectors();
    for case in list(&v, "ranking") {
        let servers: Vec<(String, f64)> = list(case, "servers")
            .iter()
            .map(|s| (text(s, "url").to_owned(), number(s, "weight")))
            .collect();
        let ranked: Vec<&str> =
            rendezvous::rank(&servers, text(case, "item_key"), |s| &s.0, |s| s.1)
                .into_iter()
                .map(|s| s.0.as_str())
                .collect();
        let expected: Vec<&str> = list(case, "expected")
            .iter()
            .map(|u| u.as_str().expect("expected holds URLs"))
            .collect();
        assert_eq!(ranked, expected, "case {:?}", text(case, "name"));
    }
}
