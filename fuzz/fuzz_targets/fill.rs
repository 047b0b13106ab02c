//! Fuzzes what other nodes send in fills: a `POST /fill` body (parsed and verified as the
//! owner does), an answer (checked as the asker does), and the resource bytes inside one
//! (read as the caches read them). Nothing may panic, and no answer may pass its check
//! without the owner's signature.

#![no_main]

use dockerhub_build_status::cache::Resource;
use dockerhub_build_status::cache::resources::{RepositoryResource, TagListResource, TagResource};
use dockerhub_build_status::federation::{Identity, Timestamp};
use dockerhub_build_status::fill::wire::{FillAnswer, FillRequest};
use dockerhub_build_status::hub::names::ImageRef;
use dockerhub_build_status::hub::repository::RepoName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = Timestamp::from_unix_ms(1_800_000_000_000);
    // An owner whose secret the fuzzer never sees: no answer can carry its signature.
    let owner = Identity::from_seed([2; 32]).public_key();
    if let Ok(request) = serde_json::from_slice::<FillRequest>(data) {
        let _ = request.verify(&owner, now);
    }
    let asker = Identity::from_seed([1; 32]);
    let request = FillRequest::new(&asker, owner, "repository", "library/alpine", now, [3; 16]);
    if let Ok(answer) = serde_json::from_slice::<FillAnswer>(data) {
        assert!(answer.check(&request, &owner).is_err(), "an unsigned answer passed");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let repo = RepoName::parse("library", "alpine").expect("a name");
        let image = ImageRef::parse("library", "alpine", "latest").expect("a name");
        let _ = RepositoryResource::read_value(&repo, text);
        if let Ok(list) = TagListResource::read_value(&repo, text) {
            assert!(list.tags.len() <= 1000);
        }
        if let Ok(tag) = TagResource::read_value(&image, text) {
            assert_eq!(tag.name, "latest");
        }
    }
});
