//! Fuzzes `peers.toml` parsing (`federation::parse_peers`): no input panics, and what is
//! accepted holds to the file's rules (http(s) URLs, no duplicates, at most `MAX_PEERS`
//! entries and `MAX_POOLS` pools, pool names that are DNS names).

#![no_main]

use std::collections::HashSet;

use dockerhub_build_status::federation::parse_peers;
use dockerhub_build_status::federation::peers::{MAX_PEERS, MAX_POOLS, dns_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = parse_peers(text) {
        assert!(file.peers.len() + file.pools.len() <= MAX_PEERS);
        assert!(file.pools.len() <= MAX_POOLS);
        for pool in &file.pools {
            assert_eq!(dns_name(&pool.name).as_deref(), Ok(pool.name.as_str()));
            assert!(pool.port > 0);
        }
        let mut seen = HashSet::new();
        for peer in &file.peers {
            let url = peer.url.as_str();
            assert!(url.starts_with("http://") || url.starts_with("https://"), "{url}");
            assert!(seen.insert(url.to_owned()), "duplicate {url}");
        }
    }
});
