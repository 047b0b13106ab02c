//! The set digest: sixteen short hashes over the (key, issued_at) pairs a node holds, so two
//! nodes that agree find out in one small message whatever the size of the network.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use super::key::PublicKey;
use super::time::Timestamp;

/// Number of buckets; a key's bucket is the high nibble of its first byte.
pub const BUCKETS: usize = 16;
/// Bytes kept of each bucket's SHA-256.
pub const BUCKET_HASH_LEN: usize = 8;

const DOMAIN: &[u8] = b"dockerhub-build-status/digest/v1\n";

/// The bucket of a key. Keys are uniformly random, so buckets fill evenly; a key can't be
/// steered into another bucket without grinding for a key, which gains nothing.
pub fn bucket_of(key: &PublicKey) -> usize {
    usize::from(key.as_bytes()[0] >> 4)
}

/// One truncated hash per bucket. Equal digests mean equal sets (up to a 64-bit collision
/// per bucket); on a difference only the differing buckets are compared key by key.
///
/// In JSON: the 16 × 8 bytes concatenated, standard base64 (172 characters).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct SetDigest([[u8; BUCKET_HASH_LEN]; BUCKETS]);

impl SetDigest {
    pub fn from_buckets(buckets: [[u8; BUCKET_HASH_LEN]; BUCKETS]) -> Self {
        Self(buckets)
    }

    pub fn bucket(&self, index: usize) -> Option<&[u8; BUCKET_HASH_LEN]> {
        self.0.get(index)
    }

    /// Indices of the buckets where `self` and `other` differ.
    pub fn differing(&self, other: &SetDigest) -> Vec<u8> {
        (0..BUCKETS)
            .filter(|&i| self.0[i] != other.0[i])
            .filter_map(|i| u8::try_from(i).ok())
            .collect()
    }
}

/// The hash of one bucket: SHA-256 over the domain string and the bucket's entries in key
/// order (key, then issued_at as big-endian u64), truncated; all zeros for an empty bucket.
/// `entries` must be sorted by key.
pub fn bucket_hash(
    entries: impl IntoIterator<Item = (PublicKey, Timestamp)>,
) -> [u8; BUCKET_HASH_LEN] {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    let mut any = false;
    for (key, issued_at) in entries {
        any = true;
        hasher.update(key.as_bytes());
        hasher.update(issued_at.as_unix_ms().to_be_bytes());
    }
    let mut out = [0u8; BUCKET_HASH_LEN];
    if any {
        let full: [u8; 32] = hasher.finalize().into();
        out.copy_from_slice(&full[..BUCKET_HASH_LEN]);
    }
    out
}

impl fmt::Debug for SetDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SetDigest({})", STANDARD.encode(self.0.concat()))
    }
}

impl Serialize for SetDigest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(self.0.concat()))
    }
}

impl<'de> Deserialize<'de> for SetDigest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const LEN: usize = BUCKETS * BUCKET_HASH_LEN;
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        // Exactly the length of 128 bytes in padded base64, before decoding anything.
        if s.len() != LEN.div_ceil(3) * 4 {
            return Err(serde::de::Error::custom(
                "digest must be base64 of 128 bytes",
            ));
        }
        let mut raw = [0u8; LEN + 2];
        match STANDARD.decode_slice(s.as_bytes(), &mut raw) {
            Ok(LEN) => {}
            _ => {
                return Err(serde::de::Error::custom(
                    "digest must be base64 of 128 bytes",
                ));
            }
        }
        let mut buckets = [[0u8; BUCKET_HASH_LEN]; BUCKETS];
        for (i, chunk) in raw[..LEN].chunks_exact(BUCKET_HASH_LEN).enumerate() {
            buckets[i].copy_from_slice(chunk);
        }
        Ok(Self(buckets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(first: u8, rest: u8) -> PublicKey {
        let mut bytes = [rest; 32];
        bytes[0] = first;
        PublicKey::from_bytes(bytes)
    }

    #[test]
    fn hash_depends_on_keys_and_times() {
        let t = Timestamp::from_unix_ms;
        let a = bucket_hash([(key(0x10, 1), t(5)), (key(0x11, 2), t(6))]);
        assert_ne!(a, [0; 8]);
        assert_eq!(a, bucket_hash([(key(0x10, 1), t(5)), (key(0x11, 2), t(6))]));
        assert_ne!(a, bucket_hash([(key(0x10, 1), t(5)), (key(0x11, 2), t(7))]));
        assert_ne!(a, bucket_hash([(key(0x10, 1), t(5))]));
        assert_eq!(bucket_hash([]), [0; 8]);
        assert_eq!(bucket_of(&key(0x10, 0)), 1);
        assert_eq!(bucket_of(&key(0xff, 0)), 15);
    }

    #[test]
    fn json_form_and_differences() {
        let mut buckets = [[0u8; 8]; BUCKETS];
        buckets[3] = [9; 8];
        let digest = SetDigest::from_buckets(buckets);
        let json = serde_json::to_string(&digest).expect("json");
        assert_eq!(json.len(), 172 + 2);
        let back: SetDigest = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, digest);
        assert_eq!(SetDigest::default().differing(&digest), vec![3]);
        assert!(serde_json::from_str::<SetDigest>("\"AAAA\"").is_err());
        assert!(serde_json::from_str::<SetDigest>(&format!("\"{}\"", "!".repeat(172))).is_err());
    }
}
