//! MnasNet's multi-objective reward (Tan et al., CVPR 2019, eq. 2):
//! ACC(m) · (LAT(m) / T)^w with w = α if LAT ≤ T else β.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reward {
    pub alpha: f64,
    pub beta: f64,
}

impl Reward {
    /// Soft constraint: α = β = −0.07 ("2× latency ≈ +5 % relative accuracy").
    pub const SOFT: Reward = Reward { alpha: -0.07, beta: -0.07 };
    /// Hard constraint: α = 0, β = −1 (no reward for being faster than T; a steep penalty above).
    pub const HARD: Reward = Reward { alpha: 0.0, beta: -1.0 };

    pub fn value(&self, accuracy: f64, latency_ms: f64, target_ms: f64) -> f64 {
        let w = if latency_ms <= target_ms { self.alpha } else { self.beta };
        accuracy * (latency_ms / target_ms).powf(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_and_hard_match_the_paper() {
        // At the target both rewards equal the accuracy.
        assert_eq!(Reward::SOFT.value(0.75, 80.0, 80.0), 0.75);
        // Soft: twice the latency costs a factor 2^-0.07 ≈ 0.9526 (≈ 5 % relative accuracy).
        assert!((Reward::SOFT.value(1.0, 160.0, 80.0) - 2f64.powf(-0.07)).abs() < 1e-12);
        // Hard: faster than T is not rewarded; twice T halves the reward.
        assert_eq!(Reward::HARD.value(0.7, 40.0, 80.0), 0.7);
        assert!((Reward::HARD.value(0.7, 160.0, 80.0) - 0.35).abs() < 1e-12);
    }
}
