//! Weighted rendezvous hashing: which node serves a badge first, and the failover order.
//!
//! The same function runs in the browser (`status.js`) and in the node, so both must agree
//! bit for bit; `tests/vectors/rendezvous.json` (made by an independent Python program,
//! `tests/vectors/generate.py`) is checked by the Rust and the JavaScript tests alike.
//!
//! For each server: `hash = fmix32(fnv1a32(utf8(url + "\n" + item_key)))`,
//! `h = (hash + 0.5) / 2^32` (strictly inside (0, 1)), `score = -weight / ln(h)`; the highest
//! score wins, ties go to the smaller URL. `url` is the canonical server URL (scheme, host,
//! port only when not the default, path without trailing slash), and `weight` is clamped to
//! `[0, MAX_WEIGHT]`. Removing a server only moves the items it ranked first; everything
//! else keeps its place, which is what lets each node's cache own its share of the badges.

use std::cmp::Ordering;

/// FNV-1a 32-bit offset basis.
pub const FNV_OFFSET_BASIS: u32 = 0x811c_9dc5;
/// FNV-1a 32-bit prime.
pub const FNV_PRIME: u32 = 0x0100_0193;
/// The largest weight a server can claim; more would let one node draw every badge.
pub const MAX_WEIGHT: f64 = 1000.0;

/// 32-bit FNV-1a of `bytes`.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    fnv1a32_continue(FNV_OFFSET_BASIS, bytes)
}

/// Feeds more bytes into an FNV-1a state, so the hash input need not be concatenated first.
fn fnv1a32_continue(mut hash: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// MurmurHash3's 32-bit finalizer.
///
/// FNV-1a runs only one multiplication after the last byte, so item keys that differ only
/// at their end (`repo-1`, `repo-2`, …) spread unevenly across servers: with five real-looking
/// node URLs one node got 2.6% of 10,000 repositories and another 24.6%. This finalizer
/// mixes every input bit into every output bit and brings all five to 20% ± 1%.
pub fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// The rendezvous key of one badge: `organization/repository:tag`, after defaults.
pub fn item_key(organization: &str, repository: &str, tag: &str) -> String {
    format!("{organization}/{repository}:{tag}")
}

/// The 32-bit hash of one (server, item) pair: `fmix32(fnv1a32(url + "\n" + item_key))`.
pub fn server_hash(url: &str, item_key: &str) -> u32 {
    let hash = fnv1a32(url.as_bytes());
    let hash = fnv1a32_continue(hash, b"\n");
    fmix32(fnv1a32_continue(hash, item_key.as_bytes()))
}

/// Maps a 32-bit hash into the open interval (0, 1), so its logarithm is finite.
pub fn unit_interval(hash: u32) -> f64 {
    (f64::from(hash) + 0.5) / 4_294_967_296.0
}

/// The weight actually used: NaN and non-positive weights count as 0 (such a server only
/// comes after every positive-weight one), and no weight counts for more than `MAX_WEIGHT`.
pub fn effective_weight(weight: f64) -> f64 {
    if weight.is_nan() || weight <= 0.0 {
        0.0
    } else {
        weight.min(MAX_WEIGHT)
    }
}

/// The rendezvous score of `url` for `item_key`; higher is preferred.
pub fn score(url: &str, item_key: &str, weight: f64) -> f64 {
    -effective_weight(weight) / unit_interval(server_hash(url, item_key)).ln()
}

/// `servers` ordered by preference for `item_key`: highest score first, ties by URL.
pub fn rank<'a, T>(
    servers: &'a [T],
    item_key: &str,
    url_of: impl Fn(&T) -> &str,
    weight_of: impl Fn(&T) -> f64,
) -> Vec<&'a T> {
    let mut scored: Vec<(f64, &'a str, &'a T)> = servers
        .iter()
        .map(|server| {
            let url = url_of(server);
            (score(url, item_key, weight_of(server)), url, server)
        })
        .collect();
    scored.sort_by(|a, b| compare(b.0, a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().map(|(_, _, server)| server).collect()
}

/// Scores are never NaN (see `effective_weight`), so this is the plain numeric order.
fn compare(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

#[cfg(test)]
mod tests;
