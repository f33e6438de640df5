//! `--predictor auto`: k-fold cross-validation on the training rows alone picks the family
//! and its regularisation. Every candidate's pooled out-of-fold scores are kept, so the
//! saved file and `fit`'s output say what was compared and why one was chosen.

use crate::additive::PerLayer;
use crate::dataset::NetworkRow;
use crate::metrics::Metrics;
use crate::network_fit::{Design, Shrinkage, SourceTerm};
use crate::{split, FitError};
use serde::{Deserialize, Serialize};
use spaces::ir::Network;

/// Folds of the selection (fewer when there are fewer architectures).
pub const FOLDS: usize = 5;
/// The fewest training architectures cross-validation can work with (two per fold at 2 folds).
pub const MIN_ARCHITECTURES: usize = 4;
/// Held-out rank correlation below which the data are called unpredictable.
pub const MIN_USEFUL_SPEARMAN: f64 = 0.2;

/// One candidate: a family and its settings.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "family", rename_all = "kebab-case")]
pub enum Candidate {
    /// An additive per-layer model (lookup table / cost model), see [`crate::network_fit`].
    Additive(Shrinkage),
}

impl Candidate {
    /// The family this candidate is saved as.
    pub fn family(&self) -> &'static str {
        match self {
            Candidate::Additive(s) if s.key_ridge.is_some() => "lut",
            Candidate::Additive(s) if s.kind_ridge.is_some() => "kernel",
            Candidate::Additive(_) => "flops+memory",
        }
    }
    pub fn describe(&self) -> String {
        let r = |v: Option<f64>| v.map_or("off".to_string(), |v| format!("{v:.0e}"));
        match self {
            Candidate::Additive(s) => {
                let source = match s.source {
                    SourceTerm::Off => "",
                    SourceTerm::Scaled => "source scaled + ",
                    SourceTerm::ScaledWithPhysics => "source scaled + MACs/bytes + ",
                };
                format!("{source}{} (kind ridge {}, key ridge {})", self.family(), r(s.kind_ridge), r(s.key_ridge))
            }
        }
    }
}

/// The candidates auto compares, simplest first (the order the one-standard-error rule
/// prefers): the MACs/bytes baseline, per-kind cost models from strong to weak shrinkage,
/// then lookup tables shrunk toward them, from strong to weak.
pub fn candidates(with_source: bool) -> Vec<Candidate> {
    let kinds = [None, Some(10.0), Some(1e-1), Some(1e-3)];
    let keys = [None, Some(10.0), Some(1e-1), Some(1e-3), Some(1e-6)];
    // With a source, fitting from scratch stays a candidate (and the simplest): a source
    // device that ranks the target worse than MACs do must not make the fit worse.
    let terms: &[SourceTerm] = if with_source {
        &[SourceTerm::Off, SourceTerm::Scaled, SourceTerm::ScaledWithPhysics]
    } else {
        &[SourceTerm::Off]
    };
    let mut out = Vec::new();
    for &key_ridge in &keys {
        for &source in terms {
            for &kind_ridge in &kinds {
                out.push(Candidate::Additive(Shrinkage { kind_ridge, key_ridge, source, no_intercept: false }));
            }
        }
    }
    out
}

/// A candidate's pooled out-of-fold scores.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Scored {
    pub candidate: Candidate,
    pub cv: Metrics,
}

/// What the selection did, as recorded in the saved file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Selection {
    pub folds: usize,
    pub training_architectures: usize,
    pub chosen: Candidate,
    /// False when the chosen candidate does not rank held-out networks meaningfully (its CV
    /// Spearman < [`MIN_USEFUL_SPEARMAN`], or undefined).
    pub predictable: bool,
    pub scores: Vec<Scored>,
}

impl Selection {
    pub fn chosen_scores(&self) -> &Scored {
        self.scores.iter().find(|s| s.candidate == self.chosen).expect("the chosen candidate was scored")
    }
}

/// Repetitions of the k-fold split (different shuffles), averaged: one split of a few
/// dozen networks is too noisy to choose by.
pub const REPEATS: usize = 3;

/// Scores every candidate by repeated k-fold CV over the architectures of `train` and
/// applies the one-standard-error rule on the out-of-fold squared error: the simplest
/// candidate whose mean squared error is within one standard error of the best one's.
/// With few networks that keeps the baseline unless the data clearly support more.
pub fn select(train: &[&NetworkRow], source: Option<&dyn PerLayer>, seed: u64) -> Result<Selection, FitError> {
    let archs = {
        let mut ids: Vec<&str> = train.iter().map(|r| r.arch_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    if archs < MIN_ARCHITECTURES {
        return Err(FitError::AutoArchitectures(archs));
    }
    let folds = FOLDS.min(archs / 2).max(2);
    let rows: Vec<NetworkRow> = train.iter().map(|r| (*r).clone()).collect();
    let splits: Vec<Vec<split::Split>> =
        (0..REPEATS as u64).map(|r| split::k_fold(&rows, folds, seed.wrapping_add(r))).collect::<Result<_, _>>()?;
    let nets: Vec<&Network> = train.iter().map(|r| &r.network).collect();
    let y: Vec<f64> = train.iter().map(|r| r.value).collect();
    let design = Design::new(&nets, source)?;
    let mut scores = Vec::new();
    let mut sq_errors: Vec<Vec<f64>> = Vec::new();
    for c in candidates(source.is_some()) {
        let Candidate::Additive(s) = c;
        let mut pred = vec![0.0; y.len()];
        let mut sq = vec![0.0; y.len()];
        for repeat in &splits {
            let mut oof = vec![0.0; y.len()];
            for f in repeat {
                let ty: Vec<f64> = f.train.iter().map(|&i| y[i]).collect();
                let fit = design.fit(&f.train, &ty, s)?;
                for (&i, p) in f.test.iter().zip(design.predict(&fit, &f.test)) {
                    oof[i] = p;
                }
            }
            for i in 0..y.len() {
                pred[i] += oof[i] / REPEATS as f64;
                sq[i] += (oof[i] - y[i]).powi(2) / REPEATS as f64;
            }
        }
        scores.push(Scored { candidate: c, cv: Metrics::compute(&pred, &y) });
        sq_errors.push(sq);
    }
    let mse: Vec<f64> = sq_errors.iter().map(|e| e.iter().sum::<f64>() / e.len() as f64).collect();
    let best = (0..mse.len()).filter(|&i| mse[i].is_finite()).min_by(|&a, &b| mse[a].total_cmp(&mse[b])).unwrap_or(0);
    let n = y.len() as f64;
    let sd = (sq_errors[best].iter().map(|e| (e - mse[best]).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    let bar = mse[best] + sd / n.sqrt();
    let chosen = (0..mse.len()).find(|&i| mse[i] <= bar).unwrap_or(best);
    // The chosen candidate's own CV rank correlation: the best of ~40 candidates on 20
    // networks clears a threshold by chance, and the chosen one is what gets saved.
    let chosen_rho = scores[chosen].cv.spearman;
    Ok(Selection {
        folds,
        training_architectures: archs,
        chosen: scores[chosen].candidate,
        predictable: chosen_rho >= MIN_USEFUL_SPEARMAN,
        scores,
    })
}
