//! Train/test splits by architecture: every row of one architecture (e.g. at several
//! resolutions or repeated runs) lands on the same side, so nothing leaks.

use crate::dataset::NetworkRow;
use crate::SplitError;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::BTreeMap;

/// How many architectures go to training.
#[derive(Clone, Copy, Debug)]
pub enum TrainSize {
    Fraction(f64),
    Count(usize),
}

/// Row indices of the training and test sides.
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// Distinct architectures in first-seen order, each with its row indices.
fn groups(rows: &[NetworkRow]) -> Vec<Vec<usize>> {
    let mut order: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out: Vec<Vec<usize>> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let g = *order.entry(&r.arch_id).or_insert_with(|| {
            out.push(Vec::new());
            out.len() - 1
        });
        out[g].push(i);
    }
    out
}

/// A seeded random split of the architectures.
pub fn split(rows: &[NetworkRow], size: TrainSize, seed: u64) -> Result<Split, SplitError> {
    let mut gs = groups(rows);
    let n = gs.len();
    let k = match size {
        TrainSize::Fraction(f) if f > 0.0 && f < 1.0 => ((f * n as f64).round() as usize).clamp(1, n - 1),
        TrainSize::Fraction(f) => return Err(SplitError::Fraction(f)),
        TrainSize::Count(c) if c >= 1 && c < n => c,
        TrainSize::Count(count) => return Err(SplitError::Count { count, architectures: n }),
    };
    gs.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let (a, b) = gs.split_at(k);
    Ok(Split { train: a.concat(), test: b.concat() })
}

/// k seeded folds over architectures: fold i tests on the i-th part and trains on the rest.
pub fn k_fold(rows: &[NetworkRow], k: usize, seed: u64) -> Result<Vec<Split>, SplitError> {
    let mut gs = groups(rows);
    if k < 2 || k > gs.len() {
        return Err(SplitError::Folds { k, architectures: gs.len() });
    }
    gs.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    Ok((0..k)
        .map(|f| {
            let (mut train, mut test) = (Vec::new(), Vec::new());
            for (i, g) in gs.iter().enumerate() {
                if i % k == f { &mut test } else { &mut train }.extend_from_slice(g);
            }
            Split { train, test }
        })
        .collect())
}
