//! Fuzzes `POST /gossip` as a node reads it: bytes into `serde_json::from_slice::<GossipRequest>`
//! and then into a fresh `Core::handle_gossip`. No input panics, and the core never takes a
//! descriptor whose signature does not verify on its own.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use dockerhub_build_status::federation::descriptor::Freshness;
use dockerhub_build_status::federation::{Core, Settings, GossipRequest, Identity, PeerUrl, Timestamp};
use libfuzzer_sys::fuzz_target;

/// A fixed clock, so descriptors in the seeds stay fresh for every run.
const NOW: Timestamp = Timestamp::from_unix_ms(1_767_225_600_000);

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<GossipRequest>(data) else {
        return;
    };
    let url = PeerUrl::parse("https://node.example").expect("url");
    let config = Settings::new(url, "0.3.0");
    let freshness = Freshness {
        max_clock_skew: config.max_clock_skew,
        max_age: config.descriptor_max_age,
    };
    let mut core = Core::new(Identity::from_seed([7; 32]), config, Vec::new(), NOW).expect("core");
    let pushed = match &request {
        GossipRequest::Sync { push, .. } => push.clone(),
        GossipRequest::Digest { .. } => Vec::new(),
    };
    let from = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    let _ = core.handle_gossip(request, from, NOW);
    for descriptor in &pushed {
        let Ok(key) = descriptor.peek_key() else {
            continue;
        };
        if core.held(&key) == Some(Timestamp::from_unix_ms(descriptor.issued_at))
            && key != core.public_key()
        {
            // Held at exactly this issue time: it must be a descriptor that verifies (a
            // forged twin with the same key and time may be refused, not the other way).
            let valid = pushed.iter().any(|d| {
                d.key == descriptor.key
                    && d.issued_at == descriptor.issued_at
                    && d.verify(NOW, &freshness, None).is_ok()
            });
            assert!(valid, "took an unverifiable descriptor: {descriptor:?}");
        }
    }
    // The core is bounded whatever one message holds.
    assert!(core.member_count() <= 128 + 1);
});
