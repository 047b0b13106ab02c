//! How the async drivers reach other nodes: a trait with an HTTP implementation
//! ([`http`]) and an in-memory one (`memory`, for tests and the simulator), and the exchange loop
//! shared by both.

use std::future::Future;

use parking_lot::Mutex;
use rand::Rng;

use crate::federation::core::{Core, GossipError, ProbeOutcome, SignatureChecks};
use crate::federation::exchange::{self, MAX_ROUND_TRIPS};
use crate::federation::message::{GossipRequest, GossipResponse, MAX_GOSSIP_BODY_BYTES};
use crate::federation::peer_url::PeerUrl;
use crate::federation::time::Timestamp;

pub mod http;
#[cfg(any(test, feature = "testkit"))]
pub mod memory;

/// Sends gossip and probes to other nodes.
///
/// Implementations apply the address policy themselves: unless private peers are allowed,
/// a name resolving to a forbidden address (see [`crate::federation::is_forbidden_probe_target`])
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

/// Why a request to another node got no usable answer: the one error of every transport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("not contacted: the address is private or reserved and --allow-private-peers is off")]
    Forbidden,
    #[error("no answer in time")]
    Timeout,
    #[error("cannot connect: {0}")]
    Unreachable(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("answer larger than {MAX_GOSSIP_BODY_BYTES} bytes")]
    TooLarge,
    #[error("answer is not what a node sends: {0}")]
    Decode(String),
}

impl TransportError {
    /// Whether the other side answered at all. A refusal (rate limit, overload) or an
    /// answer that is not a node's is an answer: something is there.
    pub fn is_answer(&self) -> bool {
        !matches!(self, Self::Unreachable(_) | Self::Timeout | Self::Forbidden)
    }
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

impl ExchangeError {
    /// Whether the request that failed got an answer ([`TransportError::is_answer`]).
    pub fn reached(&self) -> bool {
        match self {
            Self::Transport(err) => err.is_answer(),
            Self::Invalid(_) => true,
        }
    }
}

/// Runs one exchange that [`Core::tick`] asked for: sends `request` to `to`, hands each
/// answer to the core through the exchange steps every driver runs
/// ([`crate::federation::exchange`]) and sends the follow-up they return. Returns the
/// number of round trips.
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
        let response = transport.gossip(to, request).await;
        if round_trip == 1 {
            let reached = response
                .as_ref()
                .map_or_else(TransportError::is_answer, |_| true);
            core.lock().on_gossip_result(to, reached, clock());
        }
        let response = response?;
        let checks = exchange::check_answer(core, &response);
        if !checks.is_empty() {
            transport.check_signatures(checks, clock()).await;
        }
        match exchange::take_answer(core, to, response, clock(), rng)? {
            Some(follow_up) => request = follow_up,
            None => return Ok(round_trip),
        }
    }
    Ok(MAX_ROUND_TRIPS)
}
