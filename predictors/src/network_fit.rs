//! Additive per-layer models fitted to whole-network measurements, shrunk in three levels:
//!
//! `y ≈ b + r_mac·MACs + r_mb·MB  [+ a·source_ms]  + Σ_layers c_kind(l)·phys(l)  + Σ_layers δ_key(l)`
//!
//! - the global level (intercept, MACs and bytes rates; with `--from`, the source device's
//!   prediction) is unpenalised: with every other level shrunk away it is the
//!   `flops+memory` baseline (or the source calibrated by scale and offset);
//! - per-kind corrections on the physical features ([`crate::cost_model`]) are ridge-
//!   penalised by `kind_ridge`;
//! - one entry per distinct layer key (the lookup table proper) is penalised by `key_ridge`,
//!   so a key seen in many networks keeps its own value and a rarely seen one stays near
//!   what the physics says — the amount of shrinkage follows the key's evidence.
//!
//! Penalties are relative to the mean squared column norm of their level, so one grid of
//! values serves every dataset. `None` removes a level. The result is additive per layer:
//! `layer_ms(l) = physics(l) [+ a·source(l)] + δ_key(l)`, offset `b`.

use crate::additive::PerLayer;
use crate::cost_model::CostModel;
use crate::features::{self, LayerKind};
use crate::ridge::{self, Row};
use crate::FitError;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use spaces::ir::{Layer, LayerId, Network};
use std::collections::BTreeMap;

/// Shrinkage of the per-kind and per-key levels (relative ridge weights; `None` = level absent).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Shrinkage {
    pub kind_ridge: Option<f64>,
    pub key_ridge: Option<f64>,
    /// How the source device's per-layer costs enter (with `fit --from`).
    #[serde(default)]
    pub source: SourceTerm,
    /// No network intercept (every network's fixed cost is then in its layers).
    #[serde(default)]
    pub no_intercept: bool,
}

/// The global level's use of a source predictor (`fit --from`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SourceTerm {
    /// Not used: MACs and bytes rates, as without a source (fitting from scratch).
    #[default]
    Off,
    /// The source's cost, scaled, plus the offset (calibration).
    Scaled,
    /// The source's cost, scaled, and MACs and bytes rates for what it misses.
    ScaledWithPhysics,
}

impl Shrinkage {
    /// The MACs/bytes baseline: the global level alone.
    pub const BASELINE: Shrinkage =
        Shrinkage { kind_ridge: None, key_ridge: None, source: SourceTerm::Off, no_intercept: false };
}

const GLOBAL: usize = 3; // intercept, MACs, MB

/// The design of `nets` fitted on all of them with shrinkage `s`: what a saved predictor is
/// refitted with once a candidate is chosen.
pub fn fit_all(
    nets: &[&Network],
    y: &[f64],
    source: Option<&dyn PerLayer>,
    s: Shrinkage,
) -> Result<(Design, AdditiveFit), FitError> {
    let design = Design::new(nets, source)?;
    let all: Vec<usize> = (0..nets.len()).collect();
    let fit = design.fit(&all, y, s)?;
    Ok((design, fit))
}

/// The design matrix of a set of networks: one sparse row per network.
pub struct Design {
    rows: Vec<Row>,
    kinds: Vec<LayerKind>,
    keys: Vec<Layer>,
    key_index: FxHashMap<LayerId, usize>,
    has_source: bool,
}

impl Design {
    /// Columns: [intercept, MMACs, MB, (source ms)], 5 per kind present, 1 per distinct key.
    pub fn new(nets: &[&Network], source: Option<&dyn PerLayer>) -> Result<Design, FitError> {
        let mut kinds: Vec<LayerKind> = Vec::new();
        let mut keys: Vec<Layer> = Vec::new();
        let mut key_index: FxHashMap<LayerId, usize> = FxHashMap::default();
        for net in nets {
            for l in net.layers.iter().filter(|l| l.is_timed()) {
                let k = LayerKind::of(l);
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
                key_index.entry(l.id()).or_insert_with(|| {
                    keys.push(l.clone());
                    keys.len() - 1
                });
            }
        }
        kinds.sort();
        let src_cols = source.is_some() as usize;
        let kind_base = GLOBAL + src_cols;
        let key_base = kind_base + 5 * kinds.len();
        let mut rows = Vec::with_capacity(nets.len());
        for net in nets {
            let mut dense: Vec<f64> = vec![0.0; key_base];
            let mut counts: BTreeMap<usize, f64> = BTreeMap::new();
            dense[0] = 1.0;
            for l in net.layers.iter().filter(|l| l.is_timed()) {
                let f = features::physical(l);
                dense[1] += f[1] + f[2];
                dense[2] += f[3] + f[4];
                if let Some(src) = source {
                    dense[GLOBAL] += src.layer_ms(l).map_err(FitError::SourcePredictor)?;
                }
                let k = kinds.binary_search(&LayerKind::of(l)).expect("kind collected above");
                for (i, v) in f.iter().enumerate() {
                    dense[kind_base + 5 * k + i] += v;
                }
                *counts.entry(key_base + key_index[&l.id()]).or_default() += 1.0;
            }
            let mut row: Row = dense.into_iter().enumerate().filter(|(_, v)| *v != 0.0).collect();
            row.extend(counts);
            rows.push(row);
        }
        Ok(Design { rows, kinds, keys, key_index, has_source: source.is_some() })
    }

    fn kind_base(&self) -> usize {
        GLOBAL + self.has_source as usize
    }
    fn key_base(&self) -> usize {
        self.kind_base() + 5 * self.kinds.len()
    }
    fn columns(&self) -> usize {
        self.key_base() + self.keys.len()
    }

    /// Fits on the rows `subset` (indices into the design) with targets `y` (same order).
    ///
    /// The global rates (per MAC, per byte, per source millisecond) are kept non-negative,
    /// as [`crate::flops`] keeps its slopes: a rate fitted negative is dropped and the fit
    /// repeated, so more work is never predicted faster by the shared level.
    pub fn fit(&self, subset: &[usize], y: &[f64], s: Shrinkage) -> Result<AdditiveFit, FitError> {
        if subset.len() != y.len() {
            return Err(FitError::Targets { rows: subset.len(), targets: y.len() });
        }
        let mut dropped = [false; GLOBAL + 1];
        dropped[0] = s.no_intercept;
        loop {
            let fit = self.fit_with(subset, y, s, &dropped);
            let rates = [(1, fit.cost.ms_per_mmac), (2, fit.cost.ms_per_mb), (GLOBAL, fit.source_scale.unwrap_or(0.0))];
            match rates.iter().filter(|(j, v)| *v < 0.0 && !dropped[*j]).min_by(|a, b| a.1.total_cmp(&b.1)) {
                Some(&(j, _)) => dropped[j] = true,
                None => return Ok(fit),
            }
            // With every rate dropped the fit is a constant, which ranks nothing: then the prior
            // that latency grows with work holds the fit, through the origin on its main rate
            // (the source's cost, else MACs), which is positive for positive latencies.
            let used = self.rates_in_use(s);
            if used.iter().all(|&j| dropped[j]) && !dropped[0] {
                dropped = [true; GLOBAL + 1];
                dropped[*used.last().expect("a rate")] = false;
            }
        }
    }

    /// The global rate columns `s` fits (MACs, bytes, the source's cost), main one last.
    fn rates_in_use(&self, s: Shrinkage) -> Vec<usize> {
        match (self.has_source, s.source) {
            (true, SourceTerm::Scaled) => vec![GLOBAL],
            (true, SourceTerm::ScaledWithPhysics) => vec![2, 1, GLOBAL],
            _ => vec![2, 1],
        }
    }

    fn fit_with(&self, subset: &[usize], y: &[f64], s: Shrinkage, dropped: &[bool; GLOBAL + 1]) -> AdditiveFit {
        let p = self.columns();
        let (kb, lb) = (self.kind_base(), self.key_base());
        let keep = |j: usize| -> bool {
            if j < GLOBAL {
                !dropped[j] && !(self.has_source && s.source == SourceTerm::Scaled && (j == 1 || j == 2))
            } else if j < kb {
                !dropped[GLOBAL] && s.source != SourceTerm::Off
            } else if j < lb {
                s.kind_ridge.is_some()
            } else {
                s.key_ridge.is_some()
            }
        };
        // Compact the kept columns, and scale penalties by their level's mean squared norm.
        let map: Vec<Option<usize>> = {
            let mut next = 0;
            (0..p)
                .map(|j| {
                    keep(j).then(|| {
                        next += 1;
                        next - 1
                    })
                })
                .collect()
        };
        let q = map.iter().flatten().count();
        let rows: Vec<Row> = subset
            .iter()
            .map(|&i| self.rows[i].iter().filter_map(|&(j, v)| map[j].map(|c| (c, v))).collect())
            .collect();
        let mut sq = vec![0.0; q];
        for row in &rows {
            for &(c, v) in row {
                sq[c] += v * v;
            }
        }
        let level_mean = |lo: usize, hi: usize| {
            let cols: Vec<usize> = (lo..hi).filter_map(|j| map[j]).filter(|&c| sq[c] > 0.0).collect();
            cols.iter().map(|&c| sq[c]).sum::<f64>() / cols.len().max(1) as f64
        };
        let (kind_scale, key_scale) = (level_mean(kb, lb), level_mean(lb, p));
        let mut penalty = vec![0.0; q];
        for (j, c) in map.iter().enumerate().skip(kb) {
            if let Some(c) = *c {
                let (lambda, scale) =
                    if j < lb { (s.kind_ridge.unwrap(), kind_scale) } else { (s.key_ridge.unwrap(), key_scale) };
                // A column no training row touches gets a unit penalty so it stays at 0.
                penalty[c] = if sq[c] > 0.0 { lambda * scale } else { 1.0 };
            }
        }
        let x = ridge::fit(&rows, y, &penalty);
        let coef = |j: usize| map[j].map_or(0.0, |c| x[c]);
        let mut cost = CostModel { ms_per_mmac: coef(1), ms_per_mb: coef(2), per_kind: BTreeMap::new() };
        if s.kind_ridge.is_some() {
            for (k, kind) in self.kinds.iter().enumerate() {
                let mut c = [0.0; 5];
                for (i, v) in c.iter_mut().enumerate() {
                    *v = coef(kb + 5 * k + i);
                }
                cost.per_kind.insert(*kind, c);
            }
        }
        let mut delta = FxHashMap::default();
        if s.key_ridge.is_some() {
            for (sig, &i) in &self.key_index {
                let d = coef(lb + i);
                if d != 0.0 {
                    delta.insert(*sig, d);
                }
            }
        }
        AdditiveFit {
            offset_ms: coef(0),
            source_scale: if self.has_source && s.source != SourceTerm::Off { Some(coef(GLOBAL)) } else { None },
            cost,
            delta,
            shrinkage: s,
        }
    }

    /// Predictions of `fit` for the rows `subset` of the design, computed from the design's
    /// own rows (the same sums the fit saw, no per-layer lookups).
    pub fn predict(&self, fit: &AdditiveFit, subset: &[usize]) -> Vec<f64> {
        let (kb, lb) = (self.kind_base(), self.key_base());
        let mut col = vec![0.0; self.columns()];
        col[0] = fit.offset_ms;
        col[1] = fit.cost.ms_per_mmac;
        col[2] = fit.cost.ms_per_mb;
        if self.has_source {
            col[GLOBAL] = fit.source_scale.unwrap_or(0.0);
        }
        for (k, kind) in self.kinds.iter().enumerate() {
            if let Some(c) = fit.cost.per_kind.get(kind) {
                col[kb + 5 * k..kb + 5 * k + 5].copy_from_slice(c);
            }
        }
        for (sig, &i) in &self.key_index {
            col[lb + i] = fit.delta.get(sig).copied().unwrap_or(0.0);
        }
        subset.iter().map(|&i| self.rows[i].iter().map(|&(j, v)| v * col[j]).sum()).collect()
    }

    /// The distinct layers of the design's networks, one per key (first seen).
    pub fn layers(&self) -> &[Layer] {
        &self.keys
    }
}

/// A fitted three-level model (see the module doc).
#[derive(Clone, Debug)]
pub struct AdditiveFit {
    pub offset_ms: f64,
    pub source_scale: Option<f64>,
    pub cost: CostModel,
    /// Per-key deviations from the physics (keys absent here deviate by 0).
    pub delta: FxHashMap<LayerId, f64>,
    pub shrinkage: Shrinkage,
}

impl AdditiveFit {
    /// The model's cost of one layer (without the offset).
    pub fn layer_ms(&self, l: &Layer, source: Option<&dyn PerLayer>) -> Result<f64, crate::PredictError> {
        let mut ms = self.cost.layer_ms(l) + self.delta.get(&l.id()).copied().unwrap_or(0.0);
        if let (Some(a), Some(src)) = (self.source_scale, source) {
            ms += a * src.layer_ms(l)?;
        }
        Ok(ms)
    }

    pub fn network_ms(&self, net: &Network, source: Option<&dyn PerLayer>) -> Result<f64, crate::PredictError> {
        let mut sum = 0.0;
        for l in net.layers.iter().filter(|l| l.is_timed()) {
            sum += self.layer_ms(l, source)?;
        }
        Ok(self.offset_ms + sum)
    }
}
