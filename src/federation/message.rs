//! The JSON messages of `POST /gossip` and the limits every node holds them to.

use serde::{Deserialize, Serialize};

use super::descriptor::SignedDescriptor;
use super::digest::SetDigest;
use super::key::PublicKey;
use super::time::Timestamp;

/// Version of the exchange; a digest request with another version is refused.
pub const PROTOCOL_VERSION: u32 = 1;
/// Most descriptors in one message (push or answer). A joining node needs several
/// exchanges to fetch a large network, which bounds what one message can make a node verify.
pub const MAX_DESCRIPTORS_PER_MESSAGE: usize = 128;
/// Most keys one `sync` may ask for.
pub const MAX_WANTS_PER_MESSAGE: usize = 128;
/// Most (key, issued_at) entries in one `diff`; above any node's member cap.
pub const MAX_ENTRIES_PER_MESSAGE: usize = 4096;
/// Largest `/gossip` request or response body, in bytes: 128 descriptors at their largest
/// or 4096 entries fit with room to spare.
pub const MAX_GOSSIP_BODY_BYTES: usize = 512 * 1024;

/// The body of a `POST /gossip`.
///
/// An exchange is one or two round trips: `digest` → `in_sync` when nothing changed;
/// otherwise `digest` → `diff`, then `sync` → `descriptors`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GossipRequest {
    /// `{"digest":{"v":1,"buckets":"<base64>"}}`: the requester's set digest.
    Digest { v: u32, buckets: SetDigest },
    /// `{"sync":{"push":[…],"want":[…]}}`: descriptors the responder lacks or holds older
    /// versions of, and keys of which the requester wants the responder's descriptor.
    /// A leaving node sends its leave descriptor this way, with nothing wanted.
    Sync {
        #[serde(default)]
        push: Vec<SignedDescriptor>,
        #[serde(default)]
        want: Vec<PublicKey>,
    },
}

/// The answer to a [`GossipRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GossipResponse {
    /// `"in_sync"`: the digests are equal.
    InSync,
    /// `{"diff":{"buckets":[…],"entries":[["<key>",<issued_at>],…]}}`: the buckets whose
    /// hashes differ and everything the responder holds in them.
    Diff {
        buckets: Vec<u8>,
        entries: Vec<Entry>,
    },
    /// `{"descriptors":[…]}`: the answer to a `sync`'s `want`.
    Descriptors(Vec<SignedDescriptor>),
}

/// One (key, issued_at) pair of a diff, `["<base64 key>", <unix ms>]` in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry(pub PublicKey, pub Timestamp);

impl GossipRequest {
    /// A request carrying only `descriptors`, e.g. a leave.
    pub fn push(descriptors: Vec<SignedDescriptor>) -> Self {
        Self::Sync {
            push: descriptors,
            want: Vec::new(),
        }
    }
}

impl GossipResponse {
    /// The descriptors the answer carries (none for `in_sync` and `diff`).
    pub fn descriptors(&self) -> &[SignedDescriptor] {
        match self {
            Self::Descriptors(descriptors) => descriptors,
            Self::InSync | Self::Diff { .. } => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shapes_are_stable() {
        let key = PublicKey::from_bytes([0; 32]);
        let diff = GossipResponse::Diff {
            buckets: vec![0],
            entries: vec![Entry(key, Timestamp::from_unix_ms(7))],
        };
        assert_eq!(
            serde_json::to_string(&diff).expect("json"),
            format!(r#"{{"diff":{{"buckets":[0],"entries":[["{key}",7]]}}}}"#)
        );
        assert_eq!(
            serde_json::to_string(&GossipResponse::InSync).expect("json"),
            r#""in_sync""#
        );
        let sync: GossipRequest = serde_json::from_str(r#"{"sync":{"want":[]}}"#).expect("parse");
        assert_eq!(sync, GossipRequest::push(Vec::new()));
        assert!(serde_json::from_str::<GossipRequest>(r#"{"gimme":{}}"#).is_err());
        assert!(serde_json::from_str::<GossipRequest>(r#"{"sync":{"want":["nope"]}}"#).is_err());
    }
}
