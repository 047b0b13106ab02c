//! Unit tests of the rendezvous ranking; the vectors shared with status.js are checked in
//! `tests/in_process/rendezvous_vectors.rs`.

use super::*;

struct Server {
    url: String,
    weight: f64,
}

fn servers(urls: &[&str]) -> Vec<Server> {
    urls.iter()
        .map(|url| Server {
            url: (*url).to_owned(),
            weight: 1.0,
        })
        .collect()
}

fn ranked_urls(servers: &[Server], key: &str) -> Vec<String> {
    rank(servers, key, |s| &s.url, |s| s.weight)
        .into_iter()
        .map(|s| s.url.clone())
        .collect()
}

fn first(servers: &[Server], key: &str) -> String {
    ranked_urls(servers, key).swap_remove(0)
}

#[test]
fn fnv1a32_matches_published_vectors() {
    assert_eq!(fnv1a32(b""), 0x811c_9dc5);
    assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
    assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
}

#[test]
fn fmix32_matches_murmur3_of_empty_input() {
    // MurmurHash3_x86_32 of no bytes is fmix32(seed): published vectors for seeds 0, 1, !0.
    assert_eq!(fmix32(0), 0);
    assert_eq!(fmix32(1), 0x514e_28b7);
    assert_eq!(fmix32(0xffff_ffff), 0x81f1_6f39);
}

#[test]
fn server_hash_hashes_url_newline_key() {
    let key = item_key("library", "nginx", "latest");
    assert_eq!(key, "library/nginx:latest");
    let joined = format!("https://a.example\n{key}");
    assert_eq!(
        server_hash("https://a.example", &key),
        fmix32(fnv1a32(joined.as_bytes()))
    );
}

#[test]
fn unit_interval_stays_strictly_inside_zero_one() {
    for hash in [0, 1, u32::MAX / 2, u32::MAX - 1, u32::MAX] {
        let h = unit_interval(hash);
        assert!(h > 0.0 && h < 1.0, "{hash} -> {h}");
        assert!(h.ln().is_finite());
    }
}

#[test]
fn weights_are_clamped() {
    assert_eq!(effective_weight(f64::NAN), 0.0);
    assert_eq!(effective_weight(-3.0), 0.0);
    assert_eq!(effective_weight(0.0), 0.0);
    assert_eq!(effective_weight(2.5), 2.5);
    assert_eq!(effective_weight(f64::INFINITY), MAX_WEIGHT);
    assert_eq!(
        score("https://a.example", "k", 1e9),
        score("https://a.example", "k", MAX_WEIGHT)
    );
    assert!(score("https://a.example", "k", 1.0) > 0.0);
}

#[test]
fn score_grows_with_weight() {
    let one = score("https://a.example", "library/nginx:latest", 1.0);
    let two = score("https://a.example", "library/nginx:latest", 2.0);
    assert!((two - 2.0 * one).abs() < 1e-9 * two);
}

#[test]
fn ties_go_to_the_smaller_url_whatever_the_input_order() {
    let mut list = servers(&[
        "https://c.example",
        "https://a.example",
        "https://b.example",
    ]);
    for s in &mut list {
        s.weight = 0.0;
    }
    assert_eq!(
        ranked_urls(&list, "library/nginx:latest"),
        [
            "https://a.example",
            "https://b.example",
            "https://c.example"
        ]
    );
}

#[test]
fn ranking_does_not_depend_on_input_order() {
    let list = servers(&[
        "https://a.example",
        "https://b.example",
        "https://c.example",
    ]);
    let reversed = servers(&[
        "https://c.example",
        "https://b.example",
        "https://a.example",
    ]);
    for i in 0..200 {
        let key = item_key("acme", &format!("svc{i}"), "latest");
        assert_eq!(ranked_urls(&list, &key), ranked_urls(&reversed, &key));
    }
}

#[test]
fn zero_weight_servers_come_last() {
    let mut list = servers(&[
        "https://a.example",
        "https://b.example",
        "https://c.example",
    ]);
    list[0].weight = 0.0;
    for i in 0..100 {
        let key = item_key("acme", &format!("svc{i}"), "latest");
        assert_eq!(ranked_urls(&list, &key)[2], "https://a.example");
    }
}

#[test]
fn equal_servers_share_items_evenly() {
    let list = servers(&[
        "https://dockerbuildbadges.quelltext.eu",
        "https://badges.example.org",
        "https://dbs.example.com",
        "http://192.0.2.7:8080",
        "https://b.example.net/badges",
    ]);
    let mut counts = [0usize; 5];
    for i in 0..10_000 {
        let winner = first(&list, &item_key("org", &format!("repo-{i}"), "latest"));
        let index = list
            .iter()
            .position(|s| s.url == winner)
            .expect("winner is listed");
        counts[index] += 1;
    }
    for count in counts {
        assert!((1800..=2200).contains(&count), "{counts:?}");
    }
}

#[test]
fn removing_a_server_moves_only_its_items() {
    let all = servers(&[
        "http://127.0.0.1:40001",
        "http://127.0.0.1:40002",
        "http://127.0.0.1:40003",
        "http://127.0.0.1:40004",
    ]);
    let without: Vec<Server> = servers(&[
        "http://127.0.0.1:40001",
        "http://127.0.0.1:40003",
        "http://127.0.0.1:40004",
    ]);
    let mut moved = 0;
    for i in 0..2_000 {
        let key = item_key("library", &format!("image{i}"), "1.0");
        let before = first(&all, &key);
        let after = first(&without, &key);
        if before == "http://127.0.0.1:40002" {
            moved += 1;
        } else {
            assert_eq!(before, after, "{key} moved although its server stayed");
        }
    }
    assert!(moved > 0);
}
