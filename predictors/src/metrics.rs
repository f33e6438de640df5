//! Accuracy of predictions against measurements: RMSE, MAPE, share within ±5 / ±10 %,
//! Kendall τ-b and Spearman ρ (both with ties handled).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    pub n: usize,
    pub rmse_ms: f64,
    /// Mean absolute percentage error, as a fraction (0.01 = 1 %).
    pub mape: f64,
    /// Share of predictions within ±5 % of the measurement (fraction).
    pub within_5pct: f64,
    pub within_10pct: f64,
    pub kendall_tau: f64,
    pub spearman: f64,
}

impl Metrics {
    pub fn compute(predicted: &[f64], measured: &[f64]) -> Metrics {
        assert_eq!(predicted.len(), measured.len(), "predicted and measured differ in length");
        let n = predicted.len();
        let nf = n.max(1) as f64;
        let rel: Vec<f64> = predicted.iter().zip(measured).map(|(p, m)| ((p - m) / m).abs()).collect();
        Metrics {
            n,
            rmse_ms: (predicted.iter().zip(measured).map(|(p, m)| (p - m) * (p - m)).sum::<f64>() / nf).sqrt(),
            mape: rel.iter().sum::<f64>() / nf,
            within_5pct: rel.iter().filter(|&&r| r <= 0.05).count() as f64 / nf,
            within_10pct: rel.iter().filter(|&&r| r <= 0.10).count() as f64 / nf,
            kendall_tau: kendall_tau_b(predicted, measured),
            spearman: spearman(predicted, measured),
        }
    }
}

/// Kendall's τ-b: (concordant − discordant) / √((n0 − ties_x)(n0 − ties_y)). O(n²), fine for 10⁴ points.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len();
    let (mut s, mut tx, mut ty) = (0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let dx = x[i].total_cmp(&x[j]) as i64;
            let dy = y[i].total_cmp(&y[j]) as i64;
            s += dx * dy;
            tx += (dx == 0) as i64;
            ty += (dy == 0) as i64;
        }
    }
    let n0 = (n * n.saturating_sub(1) / 2) as i64;
    let denom = (((n0 - tx) as f64) * ((n0 - ty) as f64)).sqrt();
    if denom == 0.0 {
        f64::NAN
    } else {
        s as f64 / denom
    }
}

/// Ranks 1..n, ties sharing their average rank.
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = avg;
        }
        i = j + 1;
    }
    ranks
}

pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

/// Spearman's ρ: Pearson correlation of average ranks (the tie-correct definition).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&average_ranks(x), &average_ranks(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kendall_hand_computed() {
        // Pairs of (1,2,3,4) vs (1,3,2,4): 5 concordant, 1 discordant -> τ = 4/6.
        let t = kendall_tau_b(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]);
        assert!((t - 4.0 / 6.0).abs() < 1e-12, "{t}");
        // With a tie in x: x = (1,1,2,3), y = (1,2,3,4): n0 = 6, one x-tie; S = 5; τ-b = 5/√(5·6).
        let t = kendall_tau_b(&[1.0, 1.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]);
        assert!((t - 5.0 / 30f64.sqrt()).abs() < 1e-12, "{t}");
        assert!((kendall_tau_b(&[3.0, 2.0, 1.0], &[1.0, 2.0, 3.0]) + 1.0).abs() < 1e-12);
    }

    #[test]
    fn spearman_with_ties_hand_computed() {
        assert_eq!(average_ranks(&[10.0, 20.0, 20.0, 30.0]), vec![1.0, 2.5, 2.5, 4.0]);
        // ranks x = (1, 2.5, 2.5, 4), y = (1, 2, 3, 4): means 2.5; Σdxdy = 2.25+0+0+2.25 = 4.5,
        // Σdx² = 4.5, Σdy² = 5 -> ρ = 4.5/√22.5.
        let r = spearman(&[10.0, 20.0, 20.0, 30.0], &[1.0, 2.0, 3.0, 4.0]);
        assert!((r - 4.5 / 22.5f64.sqrt()).abs() < 1e-12, "{r}");
    }

    #[test]
    fn error_metrics_hand_computed() {
        let m = Metrics::compute(&[10.4, 9.0, 20.0, 33.0], &[10.0, 10.0, 20.0, 30.0]);
        // errors 0.4, -1, 0, 3 -> RMSE √(10.16/4); relative 4 %, 10 %, 0 %, 10 %.
        assert!((m.rmse_ms - (10.16f64 / 4.0).sqrt()).abs() < 1e-12);
        assert!((m.mape - 0.06).abs() < 1e-12);
        assert_eq!(m.within_5pct, 0.5);
        assert_eq!(m.within_10pct, 1.0);
    }
}
