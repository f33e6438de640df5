//! Per-layer lookup tables keyed on `Layer::key()`: network latency = calibration of
//! the sum of per-layer entries. Built from single-layer measurements, or fitted to
//! whole-network measurements with every entry shrunk toward a physical cost model
//! (see [`fit_networks`] and [`crate::network_fit`]). Layers without an entry are priced
//! by the table's fallback: that cost model by default, so a layer no training network
//! contained still gets a physical price, never an error or 0.
//!
//! Fast probes: the table is stored under its string keys, and at load every key is
//! parsed into its [`LayerId`] (a layer's fields, name excluded), so a probe hashes a few
//! integers and builds no string.

pub use crate::additive::Calibration;
use crate::additive::PerLayer;
use crate::cost_model::CostModel;
use crate::network_fit::Shrinkage;
use crate::nnls;
use crate::{document, DocumentError, FitError, LatencyPredictor, PredictError, TableError};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use spaces::ir::{Layer, LayerId, Network};
use std::path::Path;

pub const FAMILY: &str = "lut";

/// One table row. MACs and memory traffic are kept when known, for the fallback and for reading.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub key: String,
    pub ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
}

/// What to do for a layer whose key is not in the table.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(tag = "policy", rename_all = "kebab-case")]
pub enum Fallback {
    /// Refuse with [`PredictError::MissingKey`].
    #[default]
    Error,
    /// `ms = intercept_ms + ms_per_mmac·MMACs + ms_per_mb·MB`, least squares over the table's entries.
    MacsLinear { intercept_ms: f64, ms_per_mmac: f64, ms_per_mb: f64 },
    /// The physical per-kind cost model the entries were shrunk toward (fitted to networks),
    /// or fitted to the entries themselves (single-layer tables).
    CostModel { model: CostModel },
}

/// Fallback policies by name, for the command line.
pub const FALLBACKS: [&str; 3] = ["cost-model", "macs-linear", "error"];

/// A space (and resolutions) whose layers the table is meant to cover; used to prefill the fast index.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Coverage {
    pub space: String,
    pub resolutions: Vec<u32>,
}

/// How a table fitted to networks came about.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FitInfo {
    pub networks: usize,
    pub unknowns: usize,
    pub intercept: bool,
    /// Relative ridge of the per-key level (absent: no per-key level; every entry is the
    /// cost model's, or the source's, price).
    #[serde(default)]
    pub ridge: Option<f64>,
    /// Relative ridge of the per-kind level (absent: no per-kind level).
    #[serde(default)]
    pub kind_ridge: Option<f64>,
    pub train_rmse_ms: f64,
    pub train_max_abs_residual_ms: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct LutDoc {
    /// Where the numbers come from (free text: a dataset path, "ofa-yaml …", …).
    source: String,
    #[serde(default)]
    calibration: Calibration,
    #[serde(default)]
    fallback: Fallback,
    #[serde(default)]
    coverage: Vec<Coverage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fit: Option<FitInfo>,
    entries: Vec<Entry>,
}

pub struct LutPredictor {
    doc: LutDoc,
    by_id: FxHashMap<LayerId, f64>,
}

impl LutPredictor {
    /// A table from per-layer entries (e.g. single-layer measurements, or an imported table).
    pub fn from_entries(
        source: impl Into<String>,
        entries: Vec<Entry>,
        coverage: Vec<Coverage>,
    ) -> Result<Self, TableError> {
        let doc = LutDoc {
            source: source.into(),
            calibration: Calibration::default(),
            fallback: Fallback::Error,
            coverage,
            fit: None,
            entries,
        };
        Self::from_doc(doc)
    }

    fn from_doc(doc: LutDoc) -> Result<Self, TableError> {
        let mut keys = rustc_hash::FxHashSet::default();
        for e in &doc.entries {
            if !e.ms.is_finite() {
                return Err(TableError::NotFinite { key: e.key.clone(), ms: e.ms });
            }
            if !keys.insert(e.key.as_str()) {
                return Err(TableError::Repeated(e.key.clone()));
            }
        }
        // Keys are canonical (the parse checks it), so distinct keys are distinct layers.
        let by_id =
            doc.entries.iter().map(|e| Ok((e.key.parse::<LayerId>()?, e.ms))).collect::<Result<_, TableError>>()?;
        // Coverage names spaces the file claims to price; an unknown one is a bad file.
        for c in &doc.coverage {
            spaces::space(&c.space)?;
        }
        Ok(LutPredictor { doc, by_id })
    }

    pub fn source(&self) -> &str {
        &self.doc.source
    }
    pub fn entries(&self) -> &[Entry] {
        &self.doc.entries
    }
    pub fn calibration(&self) -> Calibration {
        self.doc.calibration
    }
    pub fn fallback(&self) -> &Fallback {
        &self.doc.fallback
    }
    pub fn fit_info(&self) -> Option<&FitInfo> {
        self.doc.fit.as_ref()
    }
    pub fn set_calibration(&mut self, c: Calibration) {
        self.doc.calibration = c;
    }

    /// Sets the missing-key policy; `macs-linear` is fitted here on the entries with known MACs.
    pub fn set_fallback(&mut self, policy: &str) -> Result<(), FitError> {
        self.doc.fallback = match policy {
            "error" => Fallback::Error,
            "macs-linear" => self.fit_macs_linear()?,
            "cost-model" => match &self.doc.fallback {
                // A table fitted to networks keeps the model its entries were shrunk toward.
                f @ Fallback::CostModel { .. } => f.clone(),
                _ => Fallback::CostModel { model: self.fit_cost_model()? },
            },
            other => return Err(FitError::UnknownFallback(other.into())),
        };
        Ok(())
    }

    /// The per-kind cost model fitted to the entries whose layer a covered space has (each
    /// entry a one-layer "network"), for single-layer tables.
    fn fit_cost_model(&self) -> Result<CostModel, FitError> {
        let mut layers: FxHashMap<String, Layer> = FxHashMap::default();
        for c in &self.doc.coverage {
            for l in spaces::space(&c.space)?.layer_table(&c.resolutions) {
                layers.entry(l.key()).or_insert(l);
            }
        }
        let known: Vec<(Network, f64)> = self
            .doc
            .entries
            .iter()
            .filter_map(|e| {
                layers.get(&e.key).map(|l| (Network { input: l.input, layers: vec![l.clone()], bn_eps: 1e-5 }, e.ms))
            })
            .collect();
        if known.len() < 3 {
            return Err(FitError::CostModelEntries {
                found: known.len(),
                coverage: self.doc.coverage.iter().map(|c| c.space.as_str()).collect::<Vec<_>>().join(", "),
            });
        }
        let nets: Vec<&Network> = known.iter().map(|(n, _)| n).collect();
        let y: Vec<f64> = known.iter().map(|(_, ms)| *ms).collect();
        let s = Shrinkage {
            kind_ridge: Some(1e-1),
            key_ridge: None,
            source: crate::network_fit::SourceTerm::Off,
            no_intercept: true,
        };
        Ok(crate::network_fit::fit_all(&nets, &y, None, s)?.1.cost)
    }

    fn fit_macs_linear(&self) -> Result<Fallback, FitError> {
        let known: Vec<&Entry> =
            self.doc.entries.iter().filter(|e| e.macs.is_some() && e.memory_bytes.is_some()).collect();
        if known.len() < 3 {
            return Err(FitError::MacsLinearEntries(known.len()));
        }
        // Non-negative coefficients: a layer with more work is never predicted faster.
        let rows: Vec<Vec<(usize, f64)>> = known
            .iter()
            .map(|e| vec![(0, 1.0), (1, e.macs.unwrap() as f64 / 1e6), (2, e.memory_bytes.unwrap() as f64 / 1e6)])
            .collect();
        let y: Vec<f64> = known.iter().map(|e| e.ms).collect();
        let x = nnls::nnls_rows(&rows, &y, 3, &[false; 3], 1e-9);
        Ok(Fallback::MacsLinear { intercept_ms: x[0], ms_per_mmac: x[1], ms_per_mb: x[2] })
    }

    /// Fills in MACs and memory traffic of entries whose key a covered space's layer has.
    pub fn annotate_from_coverage(&mut self) -> Result<(), spaces::ArchError> {
        let mut known = FxHashMap::default();
        for c in &self.doc.coverage {
            for l in spaces::space(&c.space)?.layer_table(&c.resolutions) {
                known.insert(l.key(), (l.macs(), l.memory_bytes()));
            }
        }
        for e in &mut self.doc.entries {
            if let Some(&(m, b)) = known.get(&e.key) {
                e.macs = Some(m);
                e.memory_bytes = Some(b);
            }
        }
        Ok(())
    }

    /// The table's value for one layer (fast index, then string key, then fallback).
    pub fn layer_ms(&self, l: &Layer) -> Result<f64, PredictError> {
        if let Some(&ms) = self.by_id.get(&l.id()) {
            return Ok(ms);
        }
        match &self.doc.fallback {
            Fallback::Error => Err(PredictError::MissingKey { layer: l.name.clone(), key: l.key() }),
            Fallback::MacsLinear { intercept_ms, ms_per_mmac, ms_per_mb } => {
                Ok(intercept_ms + ms_per_mmac * l.macs() as f64 / 1e6 + ms_per_mb * l.memory_bytes() as f64 / 1e6)
            }
            Fallback::CostModel { model } => Ok(model.layer_ms(l)),
        }
    }

    pub fn load(path: &Path) -> Result<Self, DocumentError> {
        Ok(Self::from_doc(document::read(path, FAMILY)?)?)
    }
}

impl LatencyPredictor for LutPredictor {
    fn family(&self) -> &str {
        FAMILY
    }
    fn predict_ms(&self, net: &Network) -> Result<f64, PredictError> {
        let mut sum = 0.0;
        for l in &net.layers {
            if l.is_timed() {
                sum += self.layer_ms(l)?;
            }
        }
        Ok(self.doc.calibration.scale * sum + self.doc.calibration.offset_ms)
    }
    fn save(&self, path: &Path) -> Result<(), DocumentError> {
        document::write(path, FAMILY, &self.doc)
    }
    fn per_layer(&self) -> Option<&dyn PerLayer> {
        Some(self)
    }
    fn spaces_served(&self) -> Option<Vec<String>> {
        let mut s: Vec<String> = self.doc.coverage.iter().map(|c| c.space.clone()).collect();
        s.dedup();
        (!s.is_empty()).then_some(s)
    }
    /// The resolutions the coverage lists for `space`; unlimited when a fallback prices unknown layers.
    fn resolutions_covered(&self, space: &str) -> Option<Vec<u32>> {
        if self.doc.fallback != Fallback::Error {
            return None;
        }
        let mut r: Vec<u32> =
            self.doc.coverage.iter().filter(|c| c.space == space).flat_map(|c| c.resolutions.clone()).collect();
        r.sort_unstable();
        r.dedup();
        (!r.is_empty()).then_some(r)
    }
}

impl PerLayer for LutPredictor {
    fn layer_ms(&self, l: &Layer) -> Result<f64, PredictError> {
        LutPredictor::layer_ms(self, l)
    }
    fn calibration(&self) -> Calibration {
        self.doc.calibration
    }
}

/// Options of [`fit_networks`].
#[derive(Clone, Copy, Debug)]
pub struct FitOptions {
    /// A free (unregularised) intercept for what every network shares.
    pub intercept: bool,
    /// Ridge weight of the per-key level relative to its mean squared column norm: how far
    /// an entry may move from the cost model for the evidence it has. Small values let
    /// exactly additive data (HW-NAS-Bench) be fitted to round-off; noisy phones need more.
    pub ridge: f64,
    /// Ridge weight of the per-kind level of the cost model (`None`: global rates only).
    pub kind_ridge: Option<f64>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions { intercept: true, ridge: 1e-9, kind_ridge: Some(1e-1) }
    }
}

impl FitOptions {
    pub fn shrinkage(&self) -> Shrinkage {
        Shrinkage {
            kind_ridge: self.kind_ridge,
            key_ridge: Some(self.ridge),
            source: crate::network_fit::SourceTerm::Off,
            no_intercept: !self.intercept,
        }
    }
}

/// Fits a table to end-to-end measurements: one entry per distinct layer key, each the
/// cost model's price of the layer plus a ridge-shrunk deviation (see
/// [`crate::network_fit`]); the cost model becomes the fallback for unseen layers.
pub fn fit_networks(
    source: impl Into<String>,
    nets: &[&Network],
    latency_ms: &[f64],
    coverage: Vec<Coverage>,
    opts: FitOptions,
) -> Result<LutPredictor, FitError> {
    if nets.len() != latency_ms.len() {
        return Err(FitError::Latencies { networks: nets.len(), latencies: latency_ms.len() });
    }
    if nets.is_empty() {
        return Err(FitError::NoNetworks);
    }
    let (design, fit) = crate::network_fit::fit_all(nets, latency_ms, None, opts.shrinkage())?;
    from_fit(source, &fit, design.layers(), None, coverage, nets, latency_ms)
}

/// A table of `layers` priced by a fitted additive model (`source`: the per-layer source
/// predictor of a transfer fit), with its cost model as the fallback and the fit's
/// residuals on the training networks recorded.
pub fn from_fit(
    source: impl Into<String>,
    fit: &crate::network_fit::AdditiveFit,
    layers: &[Layer],
    from: Option<&dyn PerLayer>,
    coverage: Vec<Coverage>,
    nets: &[&Network],
    latency_ms: &[f64],
) -> Result<LutPredictor, FitError> {
    let mut seen = FxHashMap::default();
    let mut entries = Vec::new();
    for l in layers.iter().filter(|l| l.is_timed()) {
        if seen.insert(l.id(), ()).is_none() {
            let ms = fit.layer_ms(l, from)?;
            entries.push(Entry { key: l.key(), ms, macs: Some(l.macs()), memory_bytes: Some(l.memory_bytes()) });
        }
    }
    let residuals: Vec<f64> =
        nets.iter().zip(latency_ms).map(|(n, y)| fit.network_ms(n, from).map(|p| p - y)).collect::<Result<_, _>>()?;
    let info = FitInfo {
        networks: nets.len(),
        unknowns: entries.len() + 1,
        intercept: !fit.shrinkage.no_intercept,
        ridge: fit.shrinkage.key_ridge,
        kind_ridge: fit.shrinkage.kind_ridge,
        train_rmse_ms: (residuals.iter().map(|r| r * r).sum::<f64>() / residuals.len().max(1) as f64).sqrt(),
        train_max_abs_residual_ms: residuals.iter().fold(0.0, |m, r| m.max(r.abs())),
    };
    let doc = LutDoc {
        source: source.into(),
        calibration: Calibration { scale: 1.0, offset_ms: fit.offset_ms },
        fallback: Fallback::CostModel { model: fit.cost.clone() },
        coverage,
        fit: Some(info),
        entries,
    };
    Ok(LutPredictor::from_doc(doc)?)
}

/// Calibrates a table (e.g. built from single-layer measurements) to whole-network
/// measurements: least-squares `y ≈ scale·Σ + offset`, which absorbs per-layer
/// overheads that isolated layer runs do not see. Two parameters need two networks with
/// different sums: with fewer (or a fit that would make the scale non-positive, i.e. a
/// constant or inverted predictor) the scale stays 1 and only the offset is fitted.
pub fn calibrate(lut: &mut LutPredictor, nets: &[&Network], latency_ms: &[f64]) -> Result<Calibration, PredictError> {
    lut.doc.calibration = Calibration::default();
    if nets.is_empty() {
        return Ok(lut.doc.calibration);
    }
    let sums = nets.iter().map(|n| lut.predict_ms(n)).collect::<Result<Vec<f64>, _>>()?;
    let distinct = sums.iter().any(|s| (s - sums[0]).abs() > 1e-12 * sums[0].abs().max(1.0));
    let mut cal = None;
    if nets.len() >= 2 && distinct {
        let rows: Vec<Vec<(usize, f64)>> = sums.iter().map(|&s| vec![(0, s), (1, 1.0)]).collect();
        let x = nnls::nnls_rows(&rows, latency_ms, 2, &[false, true], 0.0);
        if x[0] > 0.0 {
            cal = Some(Calibration { scale: x[0], offset_ms: x[1] });
        }
    }
    lut.doc.calibration = cal.unwrap_or_else(|| {
        let offset = latency_ms.iter().zip(&sums).map(|(y, s)| y - s).sum::<f64>() / sums.len() as f64;
        Calibration { scale: 1.0, offset_ms: offset }
    });
    Ok(lut.doc.calibration)
}
