//! Fuzzes `peers.toml` parsing (`federation::parse_peers`): no input panics, and what is
//! accepted holds to the file's rules (http(s) URLs, no duplicates, at most `MAX_PEERS`).

#![no_main]

use std::collections::HashSet;

use dockerhub_build_status::federation::parse_peers;
use dockerhub_build_status::federation::peers::MAX_PEERS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(peers) = parse_peers(text) {
        assert!(peers.len() <= MAX_PEERS);
        let mut seen = HashSet::new();
        for peer in &peers {
            let url = peer.url.as_str();
            assert!(url.starts_with("http://") || url.starts_with("https://"), "{url}");
            assert!(seen.insert(url.to_owned()), "duplicate {url}");
        }
    }
});
