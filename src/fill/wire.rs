//! Fills: one node asking another, the owner of a Docker Hub resource, for its cached copy,
//! in signed messages that verify the same way on every node.
//!
//! The asker signs which node it asks, what for, when, and a fresh nonce; the owner serves
//! only nodes it lists, only requests naming it, once per nonce, and signs its answer
//! together with the asker's key and nonce, the resource, its age and its bytes. So a
//! request cannot be replayed to another node, an answer cannot be replayed to another
//! request, moved to another resource, aged or altered on the way, and the owner cannot deny
//! what it said: the asker can show it when it checks the answer against Docker Hub.
//!
//! What the resources are and what their bytes mean is the cache's business; this module
//! only sees names and JSON.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::federation::{Identity, PublicKey};
use crate::tools::bounded::BoundedMap;
use crate::tools::clock::{Timestamp, millis};

/// Largest fill request read: a key of a few hundred bytes and three base64 fields.
pub const MAX_FILL_REQUEST_BYTES: usize = 2048;
/// Largest fill answer read of any resource (each kind has a bound of its own, at most
/// this). The largest resource is a tag list of 1,000 tags with their images, about 400 KB
/// of JSON for a repository with many platforms per tag.
pub const MAX_FILL_ANSWER_BYTES: usize = 1024 * 1024;
/// What a fill answer adds to the resource's bytes: keys, nonce, signature and the longest
/// cache key, in JSON.
pub const ANSWER_ENVELOPE_BYTES: usize = 1536;
/// How far a request's time may be from the owner's clock: gossip keeps clocks within this
/// of each other for descriptors too, and a request older than this is a replay.
pub const REQUEST_WINDOW: Duration = Duration::from_secs(120);
/// Longest resource name accepted (the names are short words such as `tag_info`).
const MAX_RESOURCE_LEN: usize = 32;
/// Longest key accepted (a Docker Hub name and tag fit in 400 bytes).
const MAX_KEY_LEN: usize = 512;
/// Length of the nonce in bytes.
pub const NONCE_LEN: usize = 16;

/// Domain separation: a fill signature can never pass for a descriptor's, or the other way.
/// A request of the first version named no owner; one of the second names it.
const REQUEST_DOMAIN_V1: &[u8] = b"dockerhub-build-status/fill-request/v1\n";
const REQUEST_DOMAIN: &[u8] = b"dockerhub-build-status/fill-request/v2\n";
const ANSWER_DOMAIN: &[u8] = b"dockerhub-build-status/fill-answer/v1\n";

/// Why a fill message was refused. Nothing it carried was used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FillError {
    #[error("malformed fill message: {0}")]
    Malformed(&'static str),
    #[error("the fill request's time is more than {}s from this node's clock", REQUEST_WINDOW.as_secs())]
    Stale,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("this nonce was used before")]
    Replayed,
    #[error("the answer is not for this request: {0}")]
    Unsolicited(&'static str),
    #[error("the request names another node")]
    Misdirected,
}

impl FillError {
    /// The outcome label in `dbs_fills_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            FillError::Malformed(_) => "malformed",
            FillError::Stale | FillError::Replayed | FillError::Misdirected => "replayed",
            FillError::BadSignature => "bad_signature",
            FillError::Unsolicited(_) => "unsolicited",
        }
    }
}

/// `POST /fill`: one node asking another for one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FillRequest {
    /// The asking node's key; the owner serves only nodes it lists.
    pub from: PublicKey,
    /// The key of the node asked; a request of the first version, which has none, is still
    /// read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<PublicKey>,
    /// Which resource (`status`, `repository`, `tag_list`, `tag`).
    pub resource: String,
    /// The resource's cache key (`organization/repository[:tag]`).
    pub key: String,
    /// When it was asked (Unix milliseconds).
    pub issued_at: u64,
    /// Base64 of [`NONCE_LEN`] random bytes: each request is served once.
    pub nonce: String,
    /// Base64 of the ed25519 signature over `FillRequest::signed_bytes`.
    pub signature: String,
}

impl FillRequest {
    /// A signed request to the node holding `to` for `resource` `key`.
    pub fn new(
        identity: &Identity,
        to: PublicKey,
        resource: &str,
        key: &str,
        now: Timestamp,
        nonce: [u8; NONCE_LEN],
    ) -> FillRequest {
        let mut request = FillRequest {
            from: identity.public_key(),
            to: Some(to),
            resource: resource.to_owned(),
            key: key.to_owned(),
            issued_at: now.as_unix_ms(),
            nonce: STANDARD.encode(nonce),
            signature: String::new(),
        };
        request.signature = STANDARD.encode(identity.sign(&request.signed_bytes()));
        request
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(REQUEST_DOMAIN.len() + 64 + 8 + 64 + self.key.len());
        match &self.to {
            Some(to) => {
                out.extend_from_slice(REQUEST_DOMAIN);
                out.extend_from_slice(self.from.as_bytes());
                out.extend_from_slice(to.as_bytes());
            }
            None => {
                out.extend_from_slice(REQUEST_DOMAIN_V1);
                out.extend_from_slice(self.from.as_bytes());
            }
        }
        push_text(&mut out, &self.resource);
        push_text(&mut out, &self.key);
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        push_text(&mut out, &self.nonce);
        out
    }

    /// Checks sizes, the time against `now`, that it names `me` (when it names a node) and
    /// the signature (cheapest first); the nonce's freshness is the caller's [`NonceCache`].
    pub fn verify(&self, me: &PublicKey, now: Timestamp) -> Result<[u8; NONCE_LEN], FillError> {
        if self.resource.is_empty() || self.resource.len() > MAX_RESOURCE_LEN {
            return Err(FillError::Malformed("resource"));
        }
        if self.key.is_empty() || self.key.len() > MAX_KEY_LEN {
            return Err(FillError::Malformed("key"));
        }
        let nonce = decode_nonce(&self.nonce)?;
        let at = Timestamp::from_unix_ms(self.issued_at);
        if now.duration_since(at) > REQUEST_WINDOW || at.duration_since(now) > REQUEST_WINDOW {
            return Err(FillError::Stale);
        }
        if self.to.as_ref().is_some_and(|to| to != me) {
            return Err(FillError::Misdirected);
        }
        verify_signature(&self.from, &self.signed_bytes(), &self.signature)?;
        Ok(nonce)
    }
}

/// What the owner says of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillOutcome {
    /// `value` holds the resource.
    Found,
    /// The tag (or the resource) does not exist.
    NotFound,
    /// The repository does not exist.
    RepositoryNotFound,
}

impl FillOutcome {
    fn byte(self) -> u8 {
        match self {
            FillOutcome::Found => 1,
            FillOutcome::NotFound => 2,
            FillOutcome::RepositoryNotFound => 3,
        }
    }
}

/// The owner's answer to a [`FillRequest`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FillAnswer {
    /// The answering node's key.
    pub owner: PublicKey,
    pub resource: String,
    pub key: String,
    /// The request's nonce, so the answer belongs to one request only.
    pub nonce: String,
    /// How old the owner's copy is, in milliseconds.
    pub age_ms: u64,
    pub outcome: FillOutcome,
    /// The resource, as JSON, when found; signed as the exact bytes sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Box<RawValue>>,
    /// Base64 of the owner's signature over `FillAnswer::signed_bytes` for the asker.
    pub signature: String,
}

impl FillAnswer {
    /// The owner's signed answer to `request`: `value` is the resource's JSON when found.
    pub fn sign(
        identity: &Identity,
        request: &FillRequest,
        age: Duration,
        outcome: FillOutcome,
        value: Option<Box<RawValue>>,
    ) -> FillAnswer {
        let mut answer = FillAnswer {
            owner: identity.public_key(),
            resource: request.resource.clone(),
            key: request.key.clone(),
            nonce: request.nonce.clone(),
            age_ms: millis(age),
            outcome,
            value,
            signature: String::new(),
        };
        answer.signature = STANDARD.encode(identity.sign(&answer.signed_bytes(&request.from)));
        answer
    }

    fn signed_bytes(&self, asker: &PublicKey) -> Vec<u8> {
        let value = self.value.as_deref().map_or("", RawValue::get);
        let mut out = Vec::with_capacity(ANSWER_DOMAIN.len() + 64 + 64 + value.len());
        out.extend_from_slice(ANSWER_DOMAIN);
        out.extend_from_slice(self.owner.as_bytes());
        out.extend_from_slice(asker.as_bytes());
        push_text(&mut out, &self.nonce);
        push_text(&mut out, &self.resource);
        push_text(&mut out, &self.key);
        out.extend_from_slice(&self.age_ms.to_be_bytes());
        out.push(self.outcome.byte());
        push_text(&mut out, value);
        out
    }

    /// Checks that this answers `request`, sent to the node holding `owner`, and is signed
    /// by it; a found answer must carry a value and nothing else may.
    pub fn check(&self, request: &FillRequest, owner: &PublicKey) -> Result<(), FillError> {
        if self.owner != *owner {
            return Err(FillError::Unsolicited("signed by another node"));
        }
        if self.nonce != request.nonce {
            return Err(FillError::Unsolicited("another request's nonce"));
        }
        if self.resource != request.resource || self.key != request.key {
            return Err(FillError::Unsolicited("another resource"));
        }
        if (self.outcome == FillOutcome::Found) != self.value.is_some() {
            return Err(FillError::Malformed("value"));
        }
        verify_signature(owner, &self.signed_bytes(&request.from), &self.signature)
    }

    /// The age the owner claims.
    pub fn age(&self) -> Duration {
        Duration::from_millis(self.age_ms)
    }
}

/// Appends `text` with its length, so no two field sequences sign the same bytes.
fn push_text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&u32::try_from(text.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn decode_nonce(text: &str) -> Result<[u8; NONCE_LEN], FillError> {
    let mut buf = [0u8; NONCE_LEN + 3];
    match STANDARD.decode_slice(text, &mut buf) {
        Ok(NONCE_LEN) if text.len() <= 24 => {
            let mut nonce = [0u8; NONCE_LEN];
            nonce.copy_from_slice(&buf[..NONCE_LEN]);
            Ok(nonce)
        }
        _ => Err(FillError::Malformed("nonce")),
    }
}

fn verify_signature(key: &PublicKey, message: &[u8], signature: &str) -> Result<(), FillError> {
    let mut buf = [0u8; 66];
    let bytes: [u8; 64] = match STANDARD.decode_slice(signature, &mut buf) {
        Ok(64) if signature.len() <= 88 => {
            let mut bytes = [0u8; 64];
            bytes.copy_from_slice(&buf[..64]);
            bytes
        }
        _ => return Err(FillError::Malformed("signature")),
    };
    let verifying = key
        .verifying_key()
        .map_err(|_| FillError::Malformed("key"))?;
    verifying
        .verify_strict(message, &Signature::from_bytes(&bytes))
        .map_err(|_| FillError::BadSignature)
}

/// The nonces of the requests served within the last [`REQUEST_WINDOW`]; a request whose
/// nonce is here is a replay. Bounded: when full, the oldest are forgotten first, and a
/// request older than the window is refused by its time anyway.
#[derive(Debug)]
pub struct NonceCache(BoundedMap<[u8; NONCE_LEN], Timestamp>);

impl NonceCache {
    /// A cache remembering at most `capacity` nonces.
    pub fn new(capacity: usize) -> NonceCache {
        NonceCache(BoundedMap::new(capacity))
    }

    /// Records `nonce` at `now`; false when it was seen within the window (a replay).
    pub fn first_use(&mut self, nonce: [u8; NONCE_LEN], now: Timestamp) -> bool {
        self.0
            .forget_oldest_while(|&at| now.duration_since(at) > 2 * REQUEST_WINDOW);
        if self.0.contains_key(&nonce) {
            return false;
        }
        self.0.insert(nonce, now);
        true
    }

    /// Nonces remembered now.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_unix_ms(ms)
    }

    /// The key of the node every test request is sent to.
    fn to() -> PublicKey {
        Identity::from_seed([2; 32]).public_key()
    }

    fn raw(json: &str) -> Option<Box<RawValue>> {
        Some(RawValue::from_string(json.to_owned()).expect("valid JSON"))
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_breaks_it() {
        let asker = Identity::from_seed([1; 32]);
        let request = FillRequest::new(
            &asker,
            to(),
            "repository",
            "library/alpine",
            t(1_000_000),
            [7; 16],
        );
        assert_eq!(request.verify(&to(), t(1_000_500)), Ok([7; 16]));
        let mut other = request.clone();
        other.key = "library/ubuntu".into();
        assert_eq!(
            other.verify(&to(), t(1_000_500)),
            Err(FillError::BadSignature)
        );
        let mut other = request.clone();
        other.from = Identity::from_seed([2; 32]).public_key();
        assert_eq!(
            other.verify(&to(), t(1_000_500)),
            Err(FillError::BadSignature)
        );
        let mut other = request.clone();
        other.nonce = STANDARD.encode([8u8; 16]);
        assert_eq!(
            other.verify(&to(), t(1_000_500)),
            Err(FillError::BadSignature)
        );
        let mut other = request.clone();
        other.nonce = "short".into();
        assert_eq!(
            other.verify(&to(), t(1_000_500)),
            Err(FillError::Malformed("nonce"))
        );
        let mut other = request.clone();
        other.signature = "not base64!".into();
        assert_eq!(
            other.verify(&to(), t(1_000_500)),
            Err(FillError::Malformed("signature"))
        );
        let mut other = request;
        other.key = "x".repeat(MAX_KEY_LEN + 1);
        assert_eq!(
            other.verify(&to(), t(1_000_500)),
            Err(FillError::Malformed("key"))
        );
    }

    #[test]
    fn a_request_names_its_owner_and_no_other_node_serves_it() {
        let asker = Identity::from_seed([1; 32]);
        let other = Identity::from_seed([3; 32]).public_key();
        let request = FillRequest::new(&asker, to(), "tag", "a/b:c", t(5_000), [1; 16]);
        assert!(request.verify(&to(), t(5_000)).is_ok());
        // Replayed to another node.
        assert_eq!(
            request.verify(&other, t(5_000)),
            Err(FillError::Misdirected)
        );
        // Renamed for that node, or stripped of its owner: the signature no longer holds.
        let mut renamed = request.clone();
        renamed.to = Some(other);
        assert_eq!(
            renamed.verify(&other, t(5_000)),
            Err(FillError::BadSignature)
        );
        let mut stripped = request.clone();
        stripped.to = None;
        assert_eq!(
            stripped.verify(&other, t(5_000)),
            Err(FillError::BadSignature)
        );
        // The first version's request, which names no node, is still read.
        let mut first = FillRequest {
            to: None,
            signature: String::new(),
            ..request
        };
        first.signature = STANDARD.encode(asker.sign(&first.signed_bytes()));
        let json = serde_json::to_string(&first).expect("serializes");
        assert!(!json.contains("\"to\""), "{json}");
        let first: FillRequest = serde_json::from_str(&json).expect("parses");
        assert!(first.verify(&other, t(5_000)).is_ok());
    }

    #[test]
    fn a_request_outside_the_window_is_refused_both_ways() {
        let asker = Identity::from_seed([1; 32]);
        let at = 10_000_000;
        let request = FillRequest::new(&asker, to(), "tag", "a/b:c", t(at), [1; 16]);
        let window = millis(REQUEST_WINDOW);
        assert!(request.verify(&to(), t(at + window)).is_ok());
        assert_eq!(
            request.verify(&to(), t(at + window + 1)),
            Err(FillError::Stale)
        );
        assert_eq!(
            request.verify(&to(), t(at - window - 1)),
            Err(FillError::Stale)
        );
    }

    #[test]
    fn an_answer_belongs_to_its_request_owner_and_bytes() {
        let asker = Identity::from_seed([1; 32]);
        let owner = Identity::from_seed([2; 32]);
        let request = FillRequest::new(&asker, to(), "repository", "a/b", t(5_000), [3; 16]);
        let answer = FillAnswer::sign(
            &owner,
            &request,
            Duration::from_secs(30),
            FillOutcome::Found,
            raw(r#"{"pull_count":5}"#),
        );
        // Through JSON, as it travels.
        let text = serde_json::to_string(&answer).expect("serializes");
        let answer: FillAnswer = serde_json::from_str(&text).expect("parses");
        assert_eq!(answer.check(&request, &owner.public_key()), Ok(()));
        assert_eq!(answer.age(), Duration::from_secs(30));
        // Another node's key, another request, altered bytes or age: refused.
        assert!(matches!(
            answer.check(&request, &asker.public_key()),
            Err(FillError::Unsolicited(_))
        ));
        let again = FillRequest::new(&asker, to(), "repository", "a/b", t(5_000), [4; 16]);
        assert!(matches!(
            answer.check(&again, &owner.public_key()),
            Err(FillError::Unsolicited(_))
        ));
        let other_resource = FillRequest::new(&asker, to(), "repository", "a/c", t(5_000), [3; 16]);
        assert!(matches!(
            answer.check(&other_resource, &owner.public_key()),
            Err(FillError::Unsolicited(_))
        ));
        for (from, to) in [(r#""pull_count":5"#, r#""pull_count":6"#), (":30000", ":1")] {
            let altered: FillAnswer =
                serde_json::from_str(&text.replace(from, to)).expect("parses");
            assert_eq!(
                altered.check(&request, &owner.public_key()),
                Err(FillError::BadSignature),
                "{from} -> {to}"
            );
        }
        // A request signed for another asker does not verify the answer either.
        let mut stolen = request.clone();
        stolen.from = Identity::from_seed([9; 32]).public_key();
        assert_eq!(
            answer.check(&stolen, &owner.public_key()),
            Err(FillError::BadSignature)
        );
    }

    #[test]
    fn a_found_answer_needs_a_value_and_a_not_found_none() {
        let asker = Identity::from_seed([1; 32]);
        let owner = Identity::from_seed([2; 32]);
        let request = FillRequest::new(&asker, to(), "tag", "a/b:c", t(5_000), [3; 16]);
        let empty = FillAnswer::sign(&owner, &request, Duration::ZERO, FillOutcome::Found, None);
        assert_eq!(
            empty.check(&request, &owner.public_key()),
            Err(FillError::Malformed("value"))
        );
        let missing = FillAnswer::sign(
            &owner,
            &request,
            Duration::ZERO,
            FillOutcome::NotFound,
            None,
        );
        assert_eq!(missing.check(&request, &owner.public_key()), Ok(()));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let asker = Identity::from_seed([1; 32]);
        let request = FillRequest::new(&asker, to(), "tag", "a/b:c", t(5_000), [3; 16]);
        let mut json = serde_json::to_value(&request).expect("serializes");
        json["forward"] = serde_json::Value::Bool(true);
        assert!(serde_json::from_value::<FillRequest>(json).is_err());
    }

    #[test]
    fn the_nonce_cache_refuses_a_replay_and_stays_bounded() {
        let mut cache = NonceCache::new(100);
        assert!(cache.first_use([1; 16], t(1_000)));
        assert!(!cache.first_use([1; 16], t(2_000)));
        for i in 0..1000u32 {
            let mut nonce = [0u8; 16];
            nonce[..4].copy_from_slice(&i.to_be_bytes());
            nonce[4] = 9;
            cache.first_use(nonce, t(3_000));
        }
        assert!(cache.len() <= 100);
        // Long after the window, the memory of a nonce may go: the time check refuses it.
        let later = t(3_000 + 3 * millis(REQUEST_WINDOW));
        assert!(cache.first_use([5; 16], later));
        assert_eq!(cache.len(), 1);
    }
}
