//! Wall-clock instants as plain values, so the core never reads a clock itself.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
///
/// Descriptors carry their issue time in this unit, and the core compares it with the
/// `now` its driver passes in; simulations pass a virtual clock instead.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The instant `ms` milliseconds after the Unix epoch.
    pub const fn from_unix_ms(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_unix_ms(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at the end of time.
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(millis(d)))
    }

    /// `self - d`, saturating at the epoch.
    pub fn saturating_sub(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(millis(d)))
    }

    /// Time from `earlier` to `self`; zero when `earlier` is later (clocks can step back).
    pub fn duration_since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A duration in whole milliseconds, saturating instead of overflowing.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Timestamp::from_unix_ms(1_000);
        assert_eq!(
            t.saturating_sub(Duration::from_secs(5)),
            Timestamp::from_unix_ms(0)
        );
        assert_eq!(
            Timestamp::from_unix_ms(u64::MAX - 1).saturating_add(Duration::from_secs(1)),
            Timestamp::from_unix_ms(u64::MAX)
        );
        assert_eq!(
            t.duration_since(Timestamp::from_unix_ms(4_000)),
            Duration::ZERO
        );
        assert_eq!(
            Timestamp::from_unix_ms(4_000).duration_since(t),
            Duration::from_secs(3)
        );
    }
}
