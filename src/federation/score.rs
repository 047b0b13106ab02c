//! Health scores from a node's own probes, computed the way the NTP pool scores its servers.

use serde::{Deserialize, Serialize};

/// Weight of the old score in each update.
pub const DECAY: f64 = 0.95;
/// Step for a good probe.
pub const GOOD_STEP: f64 = 1.0;
/// Step for a failed probe.
pub const BAD_STEP: f64 = -5.0;
/// A node is listed while its score is at least this.
pub const LISTED_THRESHOLD: f64 = 10.0;
/// Start score of a node named in `peers.toml`: trusted, listed after one good probe.
pub const SEED_START: f64 = 10.0;
/// Start score of a node learned by gossip: probation until it has proven itself.
pub const GOSSIP_START: f64 = 0.0;
/// The fixed point of an endless run of good probes: `GOOD_STEP / (1 - DECAY)`.
pub const MAX: f64 = 20.0;
/// The fixed point of an endless run of failures: `BAD_STEP / (1 - DECAY)`.
pub const MIN: f64 = -100.0;

/// `score' = 0.95 * score + step`: recent probes weigh most, and one bad probe costs as
/// much as five good ones earn, so a flapping node sinks.
///
/// From the ceiling of 20 one failure leaves 14 (still listed) and a second leaves 8.3
/// (unlisted): a crashed node drops out after two failed probes however good it was.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Score(f64);

impl Score {
    /// A score, clamped into `[MIN, MAX]`; NaN (a damaged state file) becomes the
    /// probation start.
    pub fn new(value: f64) -> Self {
        if value.is_nan() {
            Self(GOSSIP_START)
        } else {
            Self(value.clamp(MIN, MAX))
        }
    }

    pub fn value(self) -> f64 {
        self.0
    }

    /// The score after one more probe.
    #[must_use]
    pub fn after_probe(self, good: bool) -> Self {
        let step = if good { GOOD_STEP } else { BAD_STEP };
        Self::new(DECAY * self.0 + step)
    }

    pub fn is_listable(self) -> bool {
        self.0 >= LISTED_THRESHOLD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mut score: Score, probes: &[bool]) -> Score {
        for &good in probes {
            score = score.after_probe(good);
        }
        score
    }

    #[test]
    fn a_crashed_node_drops_out_after_two_failures_even_from_the_ceiling() {
        let ceiling = Score::new(MAX);
        let one = ceiling.after_probe(false);
        assert!((one.value() - 14.0).abs() < 1e-9, "{one:?}");
        assert!(
            one.is_listable(),
            "one failure from the top keeps a node listed"
        );
        let two = one.after_probe(false);
        assert!((two.value() - 8.3).abs() < 1e-9, "{two:?}");
        assert!(!two.is_listable());
        // The ceiling is never exceeded, whatever the run of good probes.
        let best = run(Score::new(0.0), &[true; 1000]);
        assert!(best.value() <= MAX && best.value() > 19.99, "{best:?}");
        assert!(!run(best, &[false, false]).is_listable());
    }

    #[test]
    fn seeds_are_listed_after_one_good_probe_and_gossip_nodes_after_fourteen() {
        assert!(Score::new(SEED_START).after_probe(true).is_listable());
        assert!(!Score::new(SEED_START).after_probe(false).is_listable());
        let thirteen = run(Score::new(GOSSIP_START), &[true; 13]);
        let fourteen = thirteen.after_probe(true);
        assert!(!thirteen.is_listable(), "{thirteen:?}");
        assert!(fourteen.is_listable(), "{fourteen:?}");
    }

    #[test]
    fn scores_stay_bounded_and_nan_is_repaired() {
        assert!(run(Score::new(0.0), &[false; 1000]).value() >= MIN);
        assert_eq!(Score::new(f64::NAN).value(), GOSSIP_START);
        assert_eq!(Score::new(1e9).value(), MAX);
        assert_eq!(Score::new(f64::NEG_INFINITY).value(), MIN);
    }
}
