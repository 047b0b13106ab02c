//! The core's time: wall-clock instants its drivers pass in ([`Timestamp`]), never read here.

pub use crate::tools::clock::{Timestamp, millis};
