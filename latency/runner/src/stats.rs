//! Summary statistics of latency samples, after rejecting outliers by the median
//! absolute deviation (robust to the occasional run hit by an interrupt or a
//! frequency drop, unlike a mean/std rule that the outlier itself inflates).

/// Samples further than this many scaled MADs from the median are rejected.
pub const MAD_LIMIT: f64 = 3.5;
/// MAD × 1.4826 estimates the standard deviation of normally distributed samples.
const MAD_SCALE: f64 = 1.4826;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub mean_us: f64,
    pub median_us: f64,
    /// Sample standard deviation (n − 1); 0 for a single sample.
    pub std_us: f64,
    pub min_us: f64,
    pub max_us: f64,
    /// Coefficient of variation, std / mean.
    pub cv: f64,
    pub n_kept: usize,
    pub n_rejected: usize,
}

pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// Which samples are kept (true) under the MAD rule. With MAD = 0 (more than half the
/// samples identical) nothing is rejected, since every deviation would be "infinite".
pub fn keep_mask(samples: &[f64]) -> Vec<bool> {
    if samples.len() < 3 {
        return vec![true; samples.len()];
    }
    let m = median(&sorted(samples));
    let mad = median(&sorted(&samples.iter().map(|x| (x - m).abs()).collect::<Vec<_>>())) * MAD_SCALE;
    samples.iter().map(|x| mad == 0.0 || (x - m).abs() <= MAD_LIMIT * mad).collect()
}

/// Statistics of the samples `keep` selects; `None` without samples.
pub fn summarize(samples: &[f64], keep: &[bool]) -> Option<Summary> {
    let kept: Vec<f64> = samples.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x).collect();
    if kept.is_empty() {
        return None;
    }
    let n = kept.len() as f64;
    let mean = kept.iter().sum::<f64>() / n;
    let var = if kept.len() > 1 { kept.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    let s = sorted(&kept);
    Some(Summary {
        mean_us: mean,
        median_us: median(&s),
        std_us: var.sqrt(),
        min_us: s[0],
        max_us: s[s.len() - 1],
        cv: if mean > 0.0 { var.sqrt() / mean } else { 0.0 },
        n_kept: kept.len(),
        n_rejected: samples.len() - kept.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_a_spike_and_summarizes_the_rest() {
        let xs = [100.0, 101.0, 99.0, 100.5, 99.5, 180.0];
        let keep = keep_mask(&xs);
        assert_eq!(keep, vec![true, true, true, true, true, false]);
        let s = summarize(&xs, &keep).unwrap();
        assert_eq!((s.n_kept, s.n_rejected), (5, 1));
        assert_eq!((s.median_us, s.min_us, s.max_us), (100.0, 99.0, 101.0));
        assert!((s.mean_us - 100.0).abs() < 1e-12);
        // sample std of {-1,0,1,-.5,.5}: sqrt(2.5/4)
        assert!((s.std_us - (2.5f64 / 4.0).sqrt()).abs() < 1e-12);
        assert!((s.cv - s.std_us / 100.0).abs() < 1e-15);
    }

    #[test]
    fn identical_samples_and_tiny_sets_keep_everything() {
        assert_eq!(keep_mask(&[5.0, 5.0, 5.0, 9.0]), vec![true; 4]);
        assert_eq!(keep_mask(&[1.0, 100.0]), vec![true, true]);
        let s = summarize(&[7.0], &[true]).unwrap();
        assert_eq!((s.std_us, s.cv, s.median_us), (0.0, 0.0, 7.0));
        assert!(summarize(&[1.0], &[false]).is_none());
    }
}
