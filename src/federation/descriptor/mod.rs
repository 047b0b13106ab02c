//! Signed self-descriptors: what a node says about itself, in bytes that sign and verify the
//! same way on every node.

use parking_lot::Mutex;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::address::canonical_ip;
use super::identity::Identity;
use super::key::PublicKey;
use super::peer_url::{MAX_URL_LEN, PeerUrl};
use super::time::{Timestamp, millis};
use crate::tools::bounded::BoundedMap;

/// Longest accepted version string, in bytes.
pub const MAX_VERSION_LEN: usize = 32;
/// Smallest accepted weight (capacity hint).
pub const MIN_WEIGHT: f64 = 0.01;
/// Largest accepted weight: a node claiming more would draw a share of the badge traffic
/// far beyond what one volunteer server is likely to carry.
pub const MAX_WEIGHT: f64 = 100.0;
/// Weights have at most three decimals and are signed as whole thousandths, so that no
/// JSON parser's last-bit rounding can change the signed bytes.
pub const WEIGHT_SCALE: f64 = 1000.0;
/// Most addresses a node may name for the DNS pool: a dual-stacked node needs two, a few
/// more leave room for a node behind several links, and the bound keeps descriptors small.
pub const MAX_POOL_ADDRESSES: usize = 8;
/// Length of a signature in base64 (64 bytes with padding).
pub const SIGNATURE_B64_LEN: usize = 88;

/// Domain separation: these bytes open every signed message, so a descriptor signature can
/// never be mistaken for a signature over anything else the key might sign one day.
const DOMAIN: &[u8] = b"dockerhub-build-status/descriptor/v1\n";

/// What a node says about itself. Only the node holding `key` can sign one; a node never
/// vouches for another.
#[derive(Clone, Debug, PartialEq)]
pub struct Descriptor {
    /// Public base URL, where `/health`, `/gossip` and the badges are served.
    pub url: PeerUrl,
    /// The node's identity.
    pub key: PublicKey,
    /// Software version, shown in `/servers`.
    pub version: String,
    /// Capacity hint for the browser's weighted choice.
    pub weight: f64,
    /// When this descriptor was made; of two descriptors for one key the later wins.
    pub issued_at: Timestamp,
    /// Set in the last descriptor a node sends before it shuts down.
    pub leaving: bool,
    /// The addresses at which this node serves badges for the pool name (plain HTTP on
    /// port 80 of each); empty when it does not serve the pool. A node's DNS answers them
    /// only for nodes its own probes found healthy at one of these addresses.
    pub pool: Vec<IpAddr>,
}

/// A descriptor as it travels in JSON: every field exactly as received, nothing trusted
/// until [`SignedDescriptor::verify`] says so.
///
/// ```json
/// {"url":"https://a.example","key":"<base64, 32 bytes>","version":"0.3.0","weight":1.0,
///  "issued_at":1764230400000,"leaving":false,"sig":"<base64, 64 bytes>"}
/// ```
///
/// A node serving the pool adds `"pool":["192.0.2.7","2001:db8::7"]`. The field is left
/// out when empty, so a descriptor of a node that does not serve the pool is the same JSON
/// and the same signed bytes as before the field existed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedDescriptor {
    pub url: String,
    pub key: String,
    pub version: String,
    pub weight: f64,
    pub issued_at: u64,
    pub leaving: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pool: Vec<String>,
    pub sig: String,
}

/// A descriptor whose fields are within limits and whose signature matched its key.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedDescriptor {
    descriptor: Descriptor,
    signature: [u8; 64],
}

/// How old or how far ahead a descriptor may be, relative to the receiver's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Freshness {
    /// Clock difference tolerated between nodes.
    pub max_clock_skew: Duration,
    /// A descriptor older than this is dropped everywhere: how a node that vanished without
    /// a leave is eventually forgotten by the whole network.
    pub max_age: Duration,
}

/// Why a descriptor is not acceptable. Verification has no side effects: none of these
/// changes any state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DescriptorError {
    /// A field has the wrong form or exceeds a size limit.
    #[error("malformed {field}: {reason}")]
    Malformed { field: &'static str, reason: String },
    /// The weight is not a number in `MIN_WEIGHT..=MAX_WEIGHT` with at most three decimals.
    #[error(
        "weight {0} is not a number from {MIN_WEIGHT} to {MAX_WEIGHT} with at most three decimals"
    )]
    WeightOutOfRange(f64),
    /// Issued further ahead of the receiver's clock than the tolerated skew. Sent again
    /// later, once the clocks agree, it can be accepted.
    #[error("issued {ahead_ms} ms in the future (clocks may differ by {max_ms} ms)")]
    FromTheFuture { ahead_ms: u64, max_ms: u64 },
    /// Older than the maximum age.
    #[error("expired: issued {age_ms} ms ago (limit {max_ms} ms)")]
    Expired { age_ms: u64, max_ms: u64 },
    /// The signature was not made by the named key over these fields: forged or altered.
    #[error("signature does not match key and content")]
    BadSignature,
    /// Signing with an identity other than the descriptor's key (a programming error).
    #[error("the signing identity is not the descriptor's key")]
    NotOwnKey,
}

impl DescriptorError {
    fn malformed(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Malformed {
            field,
            reason: reason.into(),
        }
    }

    /// A short, stable name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed",
            Self::WeightOutOfRange(_) => "weight_out_of_range",
            Self::FromTheFuture { .. } => "from_the_future",
            Self::Expired { .. } => "expired",
            Self::BadSignature => "bad_signature",
            Self::NotOwnKey => "not_own_key",
        }
    }

    /// Whether no honest node sends a descriptor failing this way: each verifies what it
    /// forwards (form, encoding, weight, signature, not from the future). Such a descriptor
    /// costs its sender what a forged signature does. An expired one is the exception: a
    /// descriptor fresh when a peer sent it may be a few milliseconds past its age here.
    pub fn is_rejection(&self) -> bool {
        !matches!(self, Self::Expired { .. })
    }
}

impl Descriptor {
    /// Checks the limits every receiver checks (URL form is guaranteed by [`PeerUrl`]).
    pub fn validate(&self) -> Result<(), DescriptorError> {
        validate_version(&self.version)?;
        validate_weight(self.weight)?;
        validate_pool(&self.pool)
    }

    /// The exact bytes that are signed, independent of any JSON spelling:
    ///
    /// ```text
    /// "dockerhub-build-status/descriptor/v1\n"
    /// key        32 bytes
    /// issued_at  u64, big-endian (Unix milliseconds)
    /// weight     u32, big-endian, in thousandths (1.5 is 1500)
    /// leaving    u8, 0 or 1
    /// url        u16 big-endian length, then UTF-8 bytes (canonical form)
    /// version    u8 length, then ASCII bytes
    /// pool       only when the node serves the pool: u8 1, u8 count, then per address
    ///            u8 4 + 4 bytes or u8 6 + 16 bytes
    /// ```
    ///
    /// The version's length prefix ends the bytes of a descriptor without pool addresses,
    /// so the pool section is appended without changing those: every signature made
    /// before it existed still verifies, and nodes without it sign the same bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let url = self.url.as_str().as_bytes();
        let version = self.version.as_bytes();
        let mut out =
            Vec::with_capacity(DOMAIN.len() + 32 + 8 + 8 + 1 + 2 + url.len() + 1 + version.len());
        out.extend_from_slice(DOMAIN);
        out.extend_from_slice(self.key.as_bytes());
        out.extend_from_slice(&self.issued_at.as_unix_ms().to_be_bytes());
        out.extend_from_slice(&weight_thousandths(self.weight).to_be_bytes());
        out.push(u8::from(self.leaving));
        // Lengths are bounded by MAX_URL_LEN and MAX_VERSION_LEN, checked before signing
        // and before verifying; saturating keeps this function total all the same.
        out.extend_from_slice(&u16::try_from(url.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(url);
        out.push(u8::try_from(version.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(version);
        if !self.pool.is_empty() {
            out.push(1);
            // Bounded by MAX_POOL_ADDRESSES, checked like the lengths above.
            out.push(u8::try_from(self.pool.len()).unwrap_or(u8::MAX));
            for ip in &self.pool {
                match ip {
                    IpAddr::V4(v4) => {
                        out.push(4);
                        out.extend_from_slice(&v4.octets());
                    }
                    IpAddr::V6(v6) => {
                        out.push(6);
                        out.extend_from_slice(&v6.octets());
                    }
                }
            }
        }
        out
    }

    /// Signs with `identity`, which must hold the descriptor's key.
    pub fn sign(self, identity: &Identity) -> Result<VerifiedDescriptor, DescriptorError> {
        if identity.public_key() != self.key {
            return Err(DescriptorError::NotOwnKey);
        }
        self.validate()?;
        let signature = identity.sign(&self.canonical_bytes());
        Ok(VerifiedDescriptor {
            descriptor: self,
            signature,
        })
    }
}

/// Pool addresses: at most [`MAX_POOL_ADDRESSES`], each once, in canonical form
/// (IPv4-mapped IPv6 written as IPv4), none unspecified or multicast.
fn validate_pool(pool: &[IpAddr]) -> Result<(), DescriptorError> {
    if pool.len() > MAX_POOL_ADDRESSES {
        return Err(DescriptorError::malformed(
            "pool",
            format!("more than {MAX_POOL_ADDRESSES} addresses"),
        ));
    }
    for (i, ip) in pool.iter().enumerate() {
        if canonical_ip(*ip) != *ip || ip.is_unspecified() || ip.is_multicast() {
            return Err(DescriptorError::malformed(
                "pool",
                format!("{ip} is not a unicast address in canonical form"),
            ));
        }
        if pool[..i].contains(ip) {
            return Err(DescriptorError::malformed("pool", format!("{ip} twice")));
        }
    }
    Ok(())
}

/// Parses the pool addresses of a received descriptor, bounded before anything is parsed.
fn parse_pool(pool: &[String]) -> Result<Vec<IpAddr>, DescriptorError> {
    if pool.len() > MAX_POOL_ADDRESSES {
        return Err(DescriptorError::malformed(
            "pool",
            format!("more than {MAX_POOL_ADDRESSES} addresses"),
        ));
    }
    let parsed = pool
        .iter()
        .map(|text| {
            // An address is at most 45 characters (IPv6 with an embedded IPv4).
            text.get(..46.min(text.len()))
                .filter(|t| t.len() == text.len())
                .and_then(|t| t.parse::<IpAddr>().ok())
                .ok_or_else(|| DescriptorError::malformed("pool", "not an IP address"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    validate_pool(&parsed)?;
    Ok(parsed)
}

fn validate_version(version: &str) -> Result<(), DescriptorError> {
    if version.is_empty() || version.len() > MAX_VERSION_LEN {
        return Err(DescriptorError::malformed(
            "version",
            format!("must be 1 to {MAX_VERSION_LEN} bytes"),
        ));
    }
    // It is shown in HTML and JSON by every node; keep it to what versions look like.
    if !version
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_'))
    {
        return Err(DescriptorError::malformed(
            "version",
            "only letters, digits and . - + _ are allowed",
        ));
    }
    Ok(())
}

/// Whether `weight` is a valid weight: within range, at most three decimals.
pub fn is_valid_weight(weight: f64) -> bool {
    let scaled = weight * WEIGHT_SCALE;
    weight.is_finite()
        && (MIN_WEIGHT..=MAX_WEIGHT).contains(&weight)
        && (scaled - scaled.round()).abs() < 1e-6
}

fn validate_weight(weight: f64) -> Result<(), DescriptorError> {
    if is_valid_weight(weight) {
        Ok(())
    } else {
        Err(DescriptorError::WeightOutOfRange(weight))
    }
}

/// The signed form of a weight. Only called on weights within range, so the cast is exact.
fn weight_thousandths(weight: f64) -> u32 {
    (weight * WEIGHT_SCALE)
        .round()
        .clamp(0.0, f64::from(u32::MAX)) as u32
}

impl SignedDescriptor {
    /// The key this descriptor claims, without verifying anything else: enough to tell that
    /// a descriptor is older than one already held, so it can be dropped without the cost
    /// of a signature check.
    pub fn peek_key(&self) -> Result<PublicKey, DescriptorError> {
        PublicKey::from_base64(&self.key)
            .map_err(|err| DescriptorError::malformed("key", err.to_string()))
    }

    /// Checks sizes, forms, freshness against `now`, then the signature (cheapest checks
    /// first). `cache` remembers descriptors already found good, so a simulation of many
    /// nodes in one process checks each one once.
    pub fn verify(
        &self,
        now: Timestamp,
        freshness: &Freshness,
        cache: Option<&SignatureCache>,
    ) -> Result<VerifiedDescriptor, DescriptorError> {
        let Some(cache) = cache else {
            return self.verify_uncached(now, freshness);
        };
        // Everything but freshness is a function of these exact fields, so a hit stands for
        // a full verification of them; freshness depends on `now` and is checked again.
        let fingerprint = self.fingerprint();
        if let Some(verified) = cache.get(&fingerprint) {
            check_freshness(verified.issued_at(), now, freshness)?;
            return Ok(verified);
        }
        cache.checked.fetch_add(1, Ordering::Relaxed);
        let verified = self.verify_uncached(now, freshness)?;
        cache.insert(fingerprint, verified.clone());
        Ok(verified)
    }

    /// SHA-256 over every field as received, each length-prefixed.
    fn fingerprint(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for field in [&self.url, &self.key, &self.version, &self.sig] {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        hasher.update(self.weight.to_bits().to_be_bytes());
        hasher.update(self.issued_at.to_be_bytes());
        hasher.update([u8::from(self.leaving)]);
        hasher.update((self.pool.len() as u64).to_be_bytes());
        for ip in &self.pool {
            hasher.update((ip.len() as u64).to_be_bytes());
            hasher.update(ip.as_bytes());
        }
        hasher.finalize().into()
    }

    fn verify_uncached(
        &self,
        now: Timestamp,
        freshness: &Freshness,
    ) -> Result<VerifiedDescriptor, DescriptorError> {
        if self.url.len() > MAX_URL_LEN {
            return Err(DescriptorError::malformed(
                "url",
                format!("longer than {MAX_URL_LEN} bytes"),
            ));
        }
        validate_version(&self.version)?;
        validate_weight(self.weight)?;
        if self.sig.len() != SIGNATURE_B64_LEN {
            return Err(DescriptorError::malformed("sig", "not base64 of 64 bytes"));
        }
        let pool = parse_pool(&self.pool)?;
        let key = self.peek_key()?;
        let url = PeerUrl::parse_canonical(&self.url)
            .map_err(|err| DescriptorError::malformed("url", err.to_string()))?;
        let issued_at = Timestamp::from_unix_ms(self.issued_at);
        check_freshness(issued_at, now, freshness)?;
        let mut sig = [0u8; 66];
        let signature: [u8; 64] = match STANDARD.decode_slice(&self.sig, &mut sig) {
            Ok(64) => {
                let mut bytes = [0u8; 64];
                bytes.copy_from_slice(&sig[..64]);
                bytes
            }
            _ => return Err(DescriptorError::malformed("sig", "not base64 of 64 bytes")),
        };
        let descriptor = Descriptor {
            url,
            key,
            version: self.version.clone(),
            weight: self.weight,
            issued_at,
            leaving: self.leaving,
            pool,
        };
        let message = descriptor.canonical_bytes();
        let verifying = key
            .verifying_key()
            .map_err(|err| DescriptorError::malformed("key", err.to_string()))?;
        verifying
            .verify_strict(&message, &Signature::from_bytes(&signature))
            .map_err(|_| DescriptorError::BadSignature)?;
        Ok(VerifiedDescriptor {
            descriptor,
            signature,
        })
    }
}

/// Whether a descriptor issued at `issued_at` may be held at `now`.
pub fn check_freshness(
    issued_at: Timestamp,
    now: Timestamp,
    freshness: &Freshness,
) -> Result<(), DescriptorError> {
    let skew = millis(freshness.max_clock_skew);
    if issued_at > now.saturating_add(freshness.max_clock_skew) {
        return Err(DescriptorError::FromTheFuture {
            ahead_ms: issued_at.as_unix_ms().saturating_sub(now.as_unix_ms()),
            max_ms: skew,
        });
    }
    let age = now.duration_since(issued_at);
    if age > freshness.max_age {
        return Err(DescriptorError::Expired {
            age_ms: millis(age),
            max_ms: millis(freshness.max_age),
        });
    }
    Ok(())
}

impl VerifiedDescriptor {
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }
    pub fn url(&self) -> &PeerUrl {
        &self.descriptor.url
    }
    pub fn key(&self) -> PublicKey {
        self.descriptor.key
    }
    pub fn issued_at(&self) -> Timestamp {
        self.descriptor.issued_at
    }
    pub fn leaving(&self) -> bool {
        self.descriptor.leaving
    }
    pub fn weight(&self) -> f64 {
        self.descriptor.weight
    }
    pub fn version(&self) -> &str {
        &self.descriptor.version
    }
    /// The addresses this node serves the pool on (empty: it does not).
    pub fn pool(&self) -> &[IpAddr] {
        &self.descriptor.pool
    }

    /// The wire form, to gossip on.
    pub fn to_signed(&self) -> SignedDescriptor {
        let d = &self.descriptor;
        SignedDescriptor {
            url: d.url.as_str().to_owned(),
            key: d.key.to_base64(),
            version: d.version.clone(),
            weight: d.weight,
            issued_at: d.issued_at.as_unix_ms(),
            leaving: d.leaving,
            pool: d.pool.iter().map(IpAddr::to_string).collect(),
            sig: STANDARD.encode(self.signature),
        }
    }
}

/// Descriptors already verified. Only successes are remembered, keyed by a hash of every
/// received field, so a hit means "exactly these fields were verified before"; the parsed
/// result is shared too, which saves parsing and memory. Bounded: when full, the oldest
/// entry goes.
///
/// Two uses: the cores of one process share one (simulations), so each descriptor is
/// checked once; and a node checks a message's signatures into its own cache *before* it
/// takes the core's lock (see `Core::signature_checks`), so the merge under the lock finds
/// them done. Dropping the oldest first keeps the entries of the messages in flight, which
/// are the newest; an entry lost anyway only means the merge checks it again.
#[derive(Debug)]
pub struct SignatureCache {
    seen: Mutex<BoundedMap<[u8; 32], VerifiedDescriptor>>,
    /// Signatures checked because the cache did not have them: what tests count to show
    /// where the work was done.
    checked: AtomicU64,
}

const SIGNATURE_CACHE_CAPACITY: usize = 1 << 16;

impl Default for SignatureCache {
    fn default() -> Self {
        Self::with_capacity(SIGNATURE_CACHE_CAPACITY)
    }
}

impl SignatureCache {
    /// A cache for a simulation: room for every descriptor of a large one.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache holding at most `capacity` descriptors (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(BoundedMap::new(capacity)),
            checked: AtomicU64::new(0),
        }
    }

    /// How many descriptors were verified through this cache because it did not hold them
    /// (forgeries included).
    pub fn checked(&self) -> u64 {
        self.checked.load(Ordering::Relaxed)
    }

    /// Descriptors held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, BoundedMap<[u8; 32], VerifiedDescriptor>> {
        self.seen.lock()
    }

    fn get(&self, fingerprint: &[u8; 32]) -> Option<VerifiedDescriptor> {
        self.lock().get(fingerprint).cloned()
    }

    fn insert(&self, fingerprint: [u8; 32], verified: VerifiedDescriptor) {
        self.lock().insert(fingerprint, verified);
    }
}

#[cfg(test)]
mod tests;
