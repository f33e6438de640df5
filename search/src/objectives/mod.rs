//! What a search optimises: latency objectives (one per device), an accuracy source and
//! the MnasNet reward that combines them.

pub mod accuracy;
pub mod latency;
pub mod reward;
pub mod supernet;

pub use accuracy::{AccuracySource, CapacityProxy};
pub use latency::{LatencyObjective, LatencySource};
pub use reward::Reward;
