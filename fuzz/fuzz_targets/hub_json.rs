//! Fuzzes the decoding of Docker Hub answers (`hub::read_build_history_page`,
//! `hub::read_tag_object`): no body panics, and a `next` link is only ever followed on the
//! hub's own origin, whatever the answer names.

#![no_main]

use dockerhub_build_status::hub::{PageVerdict, read_build_history_page, read_tag_object};
use libfuzzer_sys::fuzz_target;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let hub = Url::parse("https://hub.docker.com/").expect("hub URL");
    match read_build_history_page(data, &hub, "latest") {
        Ok(PageVerdict::Next(Some(next))) => {
            assert_eq!(next.origin(), hub.origin(), "followed {next}");
        }
        Ok(_) | Err(_) => {}
    }
    if let Ok(status) = read_tag_object(data, "latest") {
        assert_eq!(status.status, 10);
    }
});
