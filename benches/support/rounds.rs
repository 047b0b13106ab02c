//! Timing helpers for the benchmarks that alternate contenders round by round on one core:
//! the time a call takes over many calls, and the median of the rounds (one noisy round on
//! a shared machine does not move it).

use std::time::Instant;

/// Nanoseconds per call of `f`, timed over `iterations` calls.
pub fn time(iterations: u64, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed().as_nanos() as f64 / iterations.max(1) as f64
}

/// The median of `values` (the upper one of an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
