//! Ed25519 public keys as 32 plain bytes, written as standard base64 in JSON and TOML.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Length of a public key in base64 (32 bytes with padding).
pub const PUBLIC_KEY_B64_LEN: usize = 44;

/// A node's public key: its identity in the federation.
///
/// Plain bytes so it is cheap to compare, order and hash; [`PublicKey::verifying_key`]
/// checks that the bytes are a usable ed25519 point when a signature is to be checked.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl Ord for PublicKey {
    /// Byte order, decided by the first eight bytes as one integer almost always (keys are
    /// random): the member map is searched millions of times in a large simulation.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let head = |k: &Self| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&k.0[..8]);
            u64::from_be_bytes(b)
        };
        head(self)
            .cmp(&head(other))
            .then_with(|| self.0[8..].cmp(&other.0[8..]))
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Why a string or byte string is not a public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not standard base64 of 32 bytes")]
    Base64,
    #[error("not a valid ed25519 public key")]
    NotAPoint,
    #[error("a weak ed25519 public key (small order point)")]
    Weak,
}

impl PublicKey {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses standard base64 with padding; anything else (wrong length, URL-safe alphabet,
    /// stray bits) is refused so every key has exactly one spelling.
    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        // Length first: never decode an attacker's megabyte to find it is too long.
        if s.len() != PUBLIC_KEY_B64_LEN {
            return Err(KeyError::Base64);
        }
        let mut out = [0u8; 33];
        match STANDARD.decode_slice(s, &mut out) {
            Ok(32) => {
                let mut bytes = [0u8; 32];
                bytes.copy_from_slice(&out[..32]);
                Ok(Self(bytes))
            }
            _ => Err(KeyError::Base64),
        }
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The key as a curve point, refusing small-order (weak) keys, for which a signature
    /// proves nothing.
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::NotAPoint)?;
        if key.is_weak() {
            return Err(KeyError::Weak);
        }
        Ok(key)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_base64(s)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_base64(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_strictness() {
        let key = PublicKey::from_bytes([0xfb; 32]);
        let text = key.to_base64();
        assert_eq!(text.len(), PUBLIC_KEY_B64_LEN);
        assert!(text.contains('+') && text.contains('/'), "{text}");
        assert_eq!(PublicKey::from_base64(&text), Ok(key));
        // URL-safe alphabet, missing padding and 31 or 33 bytes are all refused.
        let url_safe = text.replace('+', "-").replace('/', "_");
        assert_eq!(PublicKey::from_base64(&url_safe), Err(KeyError::Base64));
        assert_eq!(
            PublicKey::from_base64(text.trim_end_matches('=')),
            Err(KeyError::Base64)
        );
        assert_eq!(
            PublicKey::from_base64(&STANDARD.encode([1u8; 31])),
            Err(KeyError::Base64)
        );
        assert_eq!(
            PublicKey::from_base64(&STANDARD.encode([1u8; 33])),
            Err(KeyError::Base64)
        );
        // The 43rd character carries two unused bits; setting one makes a second spelling
        // of the same bytes, which must not be accepted.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bytes = text.into_bytes();
        let index = ALPHABET
            .iter()
            .position(|&c| c == bytes[42])
            .expect("base64 char");
        bytes[42] = ALPHABET[index | 1];
        let other = String::from_utf8(bytes).expect("ascii");
        assert_eq!(PublicKey::from_base64(&other), Err(KeyError::Base64));
    }

    #[test]
    fn order_is_byte_order() {
        let mut keys: Vec<PublicKey> = (0..64u8)
            .map(|i| {
                let mut b = [i.wrapping_mul(37); 32];
                b[7] = i % 3;
                b[9] = 255 - i;
                PublicKey::from_bytes(b)
            })
            .collect();
        keys.push(PublicKey::from_bytes([0; 32]));
        keys.push(PublicKey::from_bytes([255; 32]));
        let mut by_bytes = keys.clone();
        by_bytes.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        keys.sort();
        assert_eq!(keys, by_bytes);
    }

    #[test]
    fn weak_keys_are_refused() {
        // The identity point (y = 1) is a small-order point.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            PublicKey::from_bytes(identity).verifying_key().err(),
            Some(KeyError::Weak)
        );
    }
}
