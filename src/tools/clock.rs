//! The node's clocks, each read in one place, and time as plain values.
//!
//! - Monotonic: [`Instant`], tokio's, read with [`now`]. Everything that waits, expires or
//!   limits a rate by it (the hub budget, caches, rate limits) takes the instant as an
//!   argument, and tests drive it with tokio's paused time (`start_paused`,
//!   `tokio::time::advance`) instead of waiting for real. Outside a paused test it is the
//!   system's monotonic clock.
//! - Wall: [`Timestamp`], milliseconds since the Unix epoch, read with [`wall`]. What
//!   crosses the network or a restart (descriptors' issue times, signed fill requests,
//!   saved state) is in this unit. The federation core reads no clock: its drivers pass a
//!   `Timestamp` in, and the simulator passes virtual time.
//! - [`millis`]: the one conversion of a duration to whole milliseconds.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use tokio::time::Instant;

/// The monotonic clock now (paused and moved by tokio's test clock in tests).
#[inline]
pub fn now() -> Instant {
    Instant::now()
}

/// The system's wall clock as a [`Timestamp`]. A clock set before 1970 reads as the epoch.
pub fn wall() -> Timestamp {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_unix_ms(millis(since_epoch))
}

/// A duration in whole milliseconds, saturating instead of overflowing.
#[inline]
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A reading of either clock, for what works with both ([`crate::tools::limiter`]).
pub trait Moment: Copy + Ord + fmt::Debug {
    /// Time from `earlier` to `self`; zero when `earlier` is later (a wall clock can step
    /// back).
    fn since(self, earlier: Self) -> Duration;
}

impl Moment for Instant {
    fn since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl Moment for Timestamp {
    fn since(self, earlier: Self) -> Duration {
        self.duration_since(earlier)
    }
}

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

/// For what is compared with times Docker Hub writes (RFC 3339, read as `SystemTime`).
impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(t.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
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
