//! Whether Docker Hub answers this node, as the outcomes of its own requests show: what
//! `/health`, the front page and the metrics tell the operator. A node whose Docker Hub is
//! down is still a good node to the network (it serves what it has cached, and fills from
//! other nodes' caches), so none of this changes how other nodes probe it (docs/DESIGN.md
//! section 2).

use std::time::Duration;

use crate::tools::clock::{self, Instant};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntGaugeVec, Opts};

use super::HubError;

/// Failed requests in a row (no answer, or a 5xx) after which Docker Hub counts as failing:
/// the count after which the client backs off, so the two never disagree.
pub const FAILURES_TO_FAIL: u32 = super::budget::FAILURES_BEFORE_BACKOFF;

/// What the last requests to Docker Hub found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubState {
    /// Nothing has been asked yet.
    Unknown,
    /// Docker Hub answered the last request (with the answer, or a 404).
    Ok,
    /// The last [`FAILURES_TO_FAIL`] or more requests got no answer, or a 5xx.
    Failing,
    /// Docker Hub's last word was a 429: nothing is asked until its `Retry-After` has passed.
    RateLimited,
}

impl HubState {
    /// Every state, in the order of the metric's series.
    pub const ALL: [HubState; 4] = [
        HubState::Ok,
        HubState::Failing,
        HubState::RateLimited,
        HubState::Unknown,
    ];

    /// The name in JSON and in the `state` label of `dbs_upstream_state`.
    pub fn as_str(self) -> &'static str {
        match self {
            HubState::Unknown => "unknown",
            HubState::Ok => "ok",
            HubState::Failing => "failing",
            HubState::RateLimited => "rate_limited",
        }
    }
}

/// The state at one moment, for `/health`, the front page and the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct HubView {
    pub state: HubState,
    /// How long the state has lasted: for `Failing`, since the first failure of the run.
    pub lasted: Duration,
    /// The last failure in words, while failing or rate limited.
    pub error: Option<String>,
    /// While rate limited: how long until Docker Hub is asked again (zero once it may be).
    pub retry_in: Option<Duration>,
}

impl HubView {
    /// Whether the node is short of Docker Hub: it serves what it has cached (and what other
    /// nodes' caches fill), and images it has not seen get an "unknown" or "rate limited"
    /// badge.
    pub fn degraded(&self) -> bool {
        matches!(self.state, HubState::Failing | HubState::RateLimited)
    }
}

/// The outcomes of the requests to Docker Hub, folded into a [`HubState`].
#[derive(Debug)]
pub struct HubHealth {
    inner: parking_lot::Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: HubState,
    since: Instant,
    failures_in_a_row: u32,
    /// When the current run of failures began.
    run_began: Option<Instant>,
    error: Option<String>,
    rate_limited_until: Option<Instant>,
}

impl HubHealth {
    pub fn new(now: Instant) -> HubHealth {
        HubHealth {
            inner: parking_lot::Mutex::new(Inner {
                state: HubState::Unknown,
                since: now,
                failures_in_a_row: 0,
                run_began: None,
                error: None,
                rate_limited_until: None,
            }),
        }
    }

    /// Learns from the outcome of one request that went out (requests held back by the
    /// node's own budget say nothing about Docker Hub and are not recorded). The error is
    /// kept in the hub error's own words, which pages anyone may read can show; what the
    /// HTTP client said beyond them (addresses, resolvers) goes only to the log.
    pub fn record<T>(&self, result: &Result<T, HubError>, now: Instant) {
        let mut inner = self.inner.lock();
        match result {
            Err(HubError::RateLimited { retry_in }) => {
                inner.enter(HubState::RateLimited, now);
                inner.rate_limited_until = Some(now + *retry_in);
                inner.error = Some("Docker Hub answered 429 (rate limited)".to_owned());
            }
            Err(err) if err.is_hub_failure() => {
                inner.failures_in_a_row += 1;
                let began = *inner.run_began.get_or_insert(now);
                inner.error = Some(err.to_string());
                if inner.failures_in_a_row >= FAILURES_TO_FAIL && inner.state != HubState::Failing {
                    inner.state = HubState::Failing;
                    inner.since = began;
                }
            }
            // Only `admit` and the cache make these: nothing went out.
            Err(
                HubError::Budget { .. }
                | HubError::ClientShare { .. }
                | HubError::Backoff { .. }
                | HubError::Pending,
            ) => {}
            // An answer, also a 404, a 4xx or a body that could not be read: Docker Hub is
            // there and speaks to this node.
            Ok(_) | Err(_) => {
                inner.enter(HubState::Ok, now);
                inner.failures_in_a_row = 0;
                inner.run_began = None;
                inner.error = None;
                inner.rate_limited_until = None;
            }
        }
    }

    /// The state at `now`.
    pub fn view(&self, now: Instant) -> HubView {
        let inner = self.inner.lock();
        HubView {
            state: inner.state,
            lasted: now.saturating_duration_since(inner.since),
            error: match inner.state {
                HubState::Failing | HubState::RateLimited => inner.error.clone(),
                HubState::Ok | HubState::Unknown => None,
            },
            retry_in: match (inner.state, inner.rate_limited_until) {
                (HubState::RateLimited, Some(until)) => Some(until.saturating_duration_since(now)),
                _ => None,
            },
        }
    }
}

impl Inner {
    fn enter(&mut self, state: HubState, now: Instant) {
        if self.state != state {
            self.state = state;
            self.since = now;
        }
    }
}

/// `dbs_upstream_state{state}` (1 for the current state, 0 for the others) and
/// `dbs_upstream_state_seconds` (how long it has lasted), worked out when scraped so that the
/// duration is current.
#[derive(Debug)]
pub struct HubHealthCollector {
    health: std::sync::Arc<HubHealth>,
    state: IntGaugeVec,
    lasted: Gauge,
}

impl HubHealthCollector {
    pub fn new(health: std::sync::Arc<HubHealth>) -> Result<Self, prometheus::Error> {
        Ok(HubHealthCollector {
            health,
            state: IntGaugeVec::new(
                Opts::new(
                    "dbs_upstream_state",
                    "What the last requests to Docker Hub found: 1 for the current state (ok, failing: no answer or a 5xx to the last 3 or more, rate_limited: its last word was a 429, unknown: nothing asked yet).",
                ),
                &["state"],
            )?,
            lasted: Gauge::new(
                "dbs_upstream_state_seconds",
                "How long dbs_upstream_state has been in its current state (failing: since the first failure of the run).",
            )?,
        })
    }
}

impl Collector for HubHealthCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.state.desc();
        descs.extend(self.lasted.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let view = self.health.view(clock::now());
        for state in HubState::ALL {
            self.state
                .with_label_values(&[state.as_str()])
                .set(i64::from(state == view.state));
        }
        self.lasted.set(view.lasted.as_secs_f64());
        let mut families = self.state.collect();
        families.extend(self.lasted.collect());
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn failed() -> Result<(), HubError> {
        Err(HubError::Timeout)
    }

    #[test]
    fn failing_after_three_failures_in_a_row_since_the_first() {
        let t0 = Instant::now();
        let health = HubHealth::new(t0);
        assert_eq!(health.view(t0).state, HubState::Unknown);
        health.record(&Ok::<(), HubError>(()), t0);
        assert_eq!(health.view(t0 + S).state, HubState::Ok);
        assert_eq!(health.view(t0 + S).lasted, S);

        health.record(&failed(), t0 + 10 * S);
        health.record(&failed(), t0 + 20 * S);
        assert_eq!(
            health.view(t0 + 20 * S).state,
            HubState::Ok,
            "two are noise"
        );
        health.record(&Err::<(), _>(HubError::Unreachable), t0 + 30 * S);
        let view = health.view(t0 + 310 * S);
        assert_eq!(view.state, HubState::Failing);
        assert_eq!(view.lasted, 300 * S, "since the first failure of the run");
        assert_eq!(view.error.as_deref(), Some("could not reach Docker Hub"));
        assert!(view.degraded());

        // Held back by the node's own backoff: nothing learned.
        health.record(
            &Err::<(), _>(HubError::Backoff { retry_in: S }),
            t0 + 311 * S,
        );
        assert_eq!(health.view(t0 + 312 * S).state, HubState::Failing);
        // Any answer ends it, a 404 too.
        health.record(&Err::<(), _>(HubError::NotFound), t0 + 320 * S);
        let view = health.view(t0 + 321 * S);
        assert_eq!(
            (view.state, view.lasted, view.error),
            (HubState::Ok, S, None)
        );
    }

    #[test]
    fn a_4xx_or_an_unreadable_body_is_an_answer() {
        let t0 = Instant::now();
        let health = HubHealth::new(t0);
        for _ in 0..3 {
            health.record(&failed(), t0);
        }
        health.record(&Err::<(), _>(HubError::Status { status: 401 }), t0);
        assert_eq!(health.view(t0).state, HubState::Ok);
        for _ in 0..3 {
            health.record(&Err::<(), _>(HubError::Status { status: 503 }), t0);
        }
        assert_eq!(health.view(t0).state, HubState::Failing);
        health.record(
            &Err::<(), _>(HubError::BadAnswer { reason: "x".into() }),
            t0,
        );
        assert_eq!(health.view(t0).state, HubState::Ok);
    }

    #[test]
    fn rate_limited_until_the_next_answer_with_the_wait_left() {
        let t0 = Instant::now();
        let health = HubHealth::new(t0);
        health.record(
            &Err::<(), _>(HubError::RateLimited { retry_in: 60 * S }),
            t0,
        );
        let view = health.view(t0 + 20 * S);
        assert_eq!(view.state, HubState::RateLimited);
        assert_eq!(view.retry_in, Some(40 * S));
        assert!(view.degraded());
        assert_eq!(health.view(t0 + 90 * S).retry_in, Some(Duration::ZERO));
        health.record(&Ok::<(), HubError>(()), t0 + 91 * S);
        assert_eq!(health.view(t0 + 91 * S).state, HubState::Ok);
        assert_eq!(health.view(t0 + 91 * S).retry_in, None);
    }

    #[test]
    fn the_metrics_show_the_state_and_how_long() {
        let health = std::sync::Arc::new(HubHealth::new(Instant::now()));
        let collector = HubHealthCollector::new(health.clone()).expect("collector");
        let registry = prometheus::Registry::new();
        registry.register(Box::new(collector)).expect("register");
        for _ in 0..3 {
            health.record(&failed(), Instant::now());
        }
        let mut text = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut text,
        )
        .expect("encode");
        let text = String::from_utf8(text).expect("UTF-8");
        for line in [
            "dbs_upstream_state{state=\"failing\"} 1",
            "dbs_upstream_state{state=\"ok\"} 0",
            "dbs_upstream_state{state=\"rate_limited\"} 0",
            "dbs_upstream_state{state=\"unknown\"} 0",
            "dbs_upstream_state_seconds ",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
