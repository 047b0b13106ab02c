//! How the async drivers reach other nodes: a trait with an HTTP implementation
//! (`crate::network`) and an in-memory one ([`super::memory`]), and the exchange loop
//! shared by both.

use std::future::Future;
use std::sync::Mutex;

use rand::Rng;

use super::core::{Core, GossipError, ProbeOutcome, SignatureChecks};
use super::message::{GossipRequest, GossipResponse, MAX_GOSSIP_BODY_BYTES};
use super::peer_url::PeerUrl;
use super::time::Timestamp;

/// Sends gossip and probes to other nodes.
///
/// Implementations apply the address policy themselves: unless private peers are allowed,
/// a name resolving to a forbidden address (see [`super::net::is_forbidden_probe_target`])
/// is not contacted, and `probe` reports [`ProbeOutcome::forbidden`].
pub trait Transport: Send + Sync {
    /// `POST {to}/gossip` with `request` as JSON; the decoded answer, or why there is none.
    /// A refusal by the peer (an HTTP error status) is an error too.
    fn gossip(
        &self,
        to: &PeerUrl,
        request: GossipRequest,
    ) -> impl Future<Output = Result<GossipResponse, TransportError>> + Send;

    /// `GET {url}/health`, reporting the facts the core judges (never failing: an error is
    /// an unanswered probe).
    fn probe(&self, url: &PeerUrl) -> impl Future<Output = ProbeOutcome> + Send;

    /// Runs the signature checks of an answer before the core merges it. This default runs
    /// them on the calling task; a driver on an async runtime that serves other requests
    /// on the same threads moves them off those threads.
    fn check_signatures(
        &self,
        checks: SignatureChecks,
        now: Timestamp,
    ) -> impl Future<Output = ()> + Send {
        async move {
            checks.run(now);
        }
    }
}

/// Why a gossip request got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("timed out")]
    Timeout,
    #[error("not contacted: {0} resolves to a forbidden address")]
    Forbidden(String),
    #[error("peer answered HTTP {status}")]
    Status { status: u16 },
    #[error("answer larger than {MAX_GOSSIP_BODY_BYTES} bytes")]
    TooLarge,
    #[error("undecodable answer: {0}")]
    Decode(String),
}

/// Why an exchange stopped early.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The peer's answer broke the protocol's limits.
    #[error("invalid answer: {0}")]
    Invalid(#[from] GossipError),
}

/// Round trips in one exchange at most: digest → diff, then sync → descriptors.
pub const MAX_ROUND_TRIPS: usize = 2;

/// Runs one exchange that [`Core::tick`] asked for: sends `request` to `to`, hands each
/// answer to the core and sends the follow-up it returns. Returns the number of round trips.
///
/// The lock is held only while the core computes, never across an `.await`, and not while
/// an answer's signatures are checked: that is the costly part (up to 128 checks), and
/// everything else the node does with its core (probe results, `/servers`, the server side
/// of gossip) would wait for it.
pub async fn exchange<T, R>(
    transport: &T,
    core: &Mutex<Core>,
    to: &PeerUrl,
    request: GossipRequest,
    clock: impl Fn() -> Timestamp,
    rng: &mut R,
) -> Result<usize, ExchangeError>
where
    T: Transport,
    R: Rng + Send + ?Sized,
{
    let mut request = request;
    for round_trip in 1..=MAX_ROUND_TRIPS {
        let response = transport.gossip(to, request).await?;
        let checks = core
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .signature_checks(response.descriptors());
        if !checks.is_empty() {
            transport.check_signatures(checks, clock()).await;
        }
        let next = {
            let mut core = core.lock().unwrap_or_else(|p| p.into_inner());
            core.handle_gossip_response(to, response, clock(), rng)?
        };
        match next {
            Some(follow_up) => request = follow_up,
            None => return Ok(round_trip),
        }
    }
    Ok(MAX_ROUND_TRIPS)
}
