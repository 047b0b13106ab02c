//! One gossip exchange step on each side, over a core behind a lock: the server's step for
//! a received request ([`serve`]) and the client's step for each answer to its own request
//! ([`check_answer`] then [`take_answer`]). The node's driver and the simulator both run
//! exactly these, signature checks included.
//!
//! The lock is held only while the core computes, and never while signatures are checked:
//! that is the costly part (up to 128 checks a message), and everything else a node does
//! with its core (probe results, `/servers`, the other side of gossip) would wait for it.

use std::net::IpAddr;

use parking_lot::Mutex;
use rand::Rng;

use super::core::{Core, GossipError, SignatureChecks};
use super::message::{GossipRequest, GossipResponse};
use super::peer_url::PeerUrl;
use super::time::Timestamp;

/// Round trips in one exchange at most: digest → diff, then sync → descriptors.
pub const MAX_ROUND_TRIPS: usize = 2;

/// The server's side of one request from `from_ip`: the rate limit and the message's limits
/// first (a throttled source costs no signature check), the signature checks with the lock
/// free, then the merge, which finds them done, and the answer. Blocking: an async caller
/// runs it off its I/O threads.
pub fn serve(
    core: &Mutex<Core>,
    request: GossipRequest,
    from_ip: IpAddr,
    clock: impl Fn() -> Timestamp,
) -> Result<GossipResponse, GossipError> {
    let admitted = core.lock().admit_gossip(request, from_ip, clock())?;
    let checks = core.lock().signature_checks(admitted.descriptors());
    checks.run(clock());
    core.lock().answer_gossip(admitted, clock())
}

/// The client's first step with an answer: the signature checks merging it would need, to
/// be run ([`SignatureChecks::run`]) without the lock before [`take_answer`].
pub fn check_answer(core: &Mutex<Core>, response: &GossipResponse) -> SignatureChecks {
    core.lock().signature_checks(response.descriptors())
}

/// The client's second step: merges `from`'s answer and returns the follow-up request to
/// send to `from`, if any.
pub fn take_answer<R: Rng + ?Sized>(
    core: &Mutex<Core>,
    from: &PeerUrl,
    response: GossipResponse,
    now: Timestamp,
    rng: &mut R,
) -> Result<Option<GossipRequest>, GossipError> {
    core.lock().handle_gossip_response(from, response, now, rng)
}
