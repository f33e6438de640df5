//! Latency (and accuracy) predictors fitted from measurements, and their evaluation.
//!
//! Every latency predictor answers for a concrete [`Network`] from the IR, so the
//! same predictor serves any space whose layers it knows. Each family saves to a
//! versioned plain-JSON document (see [`document`]) and [`load_predictor`] reads
//! any of them back.
//!
//! Families:
//! - [`lut::LutPredictor`] (`lut`): per-layer lookup table keyed on [`spaces::ir::Layer::key`],
//!   from single-layer measurements or fitted to whole-network measurements by NNLS;
//! - [`kernel::KernelPredictor`] (`kernel`): nn-Meter-style random forests per kernel type;
//! - [`latency_mlp::MlpPredictor`] (`mlp`): an end-to-end MLP on the layer tokens and the
//!   network's physical totals, with a CV-regularised ridge as its linear path;
//! - [`flops::FlopsPredictor`] (`flops`): linear in MACs (+ memory traffic), the baseline;
//! - [`spnas::SinglePathPredictor`] (`spnas`): Single-Path NAS's Pixel 1 runtime model;
//! - [`ofa_yaml::OfaLut`] (`ofa-lut`): OFA's published lookup tables, one per input resolution;
//! - [`accuracy::MlpAccuracyPredictor`] (`accuracy-mlp`): OFA-style accuracy MLP on the gene one-hot;
//! - [`ofa_accuracy::OfaAccuracyPredictor`] (`ofa-accuracy`): OFA's own trained accuracy predictor,
//!   imported from its `.pth` ([`torch_file`] reads PyTorch files).
//!
//! Accuracy predictor files of any family load with [`accuracy::load`].
//!
//! A fitted latency predictor also records the precision (fp32, fp16, int8) its measurements
//! were deployed in ([`precision`]), and jobs of another precision refuse it.
//!
//! Errors are one enum per concern ([`error`]: reading datasets, reading and writing
//! predictor files, fitting, importing, predicting), with the errors of the libraries below
//! kept as sources.

pub mod accuracy;
pub mod additive;
pub mod auto;
pub mod compare;
pub mod cost_model;
pub mod dataset;
pub mod document;
pub mod embedding;
pub mod error;
pub mod eval;
pub mod features;
pub mod flops;
pub mod gene_table;
pub mod kernel;
pub mod latency_mlp;
pub mod lut;
pub mod metrics;
pub mod mlp;
pub mod network_fit;
pub mod nnls;
pub mod ofa_accuracy;
pub mod ofa_yaml;
pub mod plots;
pub mod precision;
pub mod ridge;
pub mod split;
pub mod spnas;
pub mod torch_file;
pub mod train;

pub use accuracy::AccuracyPredictor;
pub use document::{load_predictor, FORMAT, VERSION};
pub use error::{
    AccuracyError, DatasetError, DocumentError, FitError, ImportError, MlpError, PlotError, PredictError,
    RowPredictError, ServeError, SplitError, TableError, TorchFileError,
};
pub use latency::modelfile::Precision;
pub use precision::{check_precision, with_precision};
use spaces::ir::Network;

/// A latency predictor for whole networks, in milliseconds.
pub trait LatencyPredictor: Send + Sync {
    /// Family name: `lut`, `kernel`, `mlp`, `flops`, ...
    fn family(&self) -> &str;
    fn predict_ms(&self, net: &Network) -> Result<f64, PredictError>;
    /// The predictor as its versioned JSON document. Families whose state does not fit in
    /// JSON (the MLP's weights) write side files next to `path` as well.
    fn save(&self, path: &std::path::Path) -> Result<(), DocumentError>;
    /// The predictor as a per-layer sum, when it is one ([`additive::PerLayer`]): search and
    /// the differentiable searches compile it into an [`additive::LayerTable`].
    fn per_layer(&self) -> Option<&dyn additive::PerLayer> {
        None
    }
    /// The per-layer form for networks at input resolution `resolution`: [`per_layer`](Self::per_layer)
    /// unless the predictor's layer costs depend on the resolution (OFA's per-resolution tables).
    fn per_layer_at(&self, _resolution: u32) -> Option<&dyn additive::PerLayer> {
        self.per_layer()
    }
    /// The predictor as a per-layer sum followed by a final function, when it is one
    /// ([`embedding::LayerEmbedding`]: the latency MLP); it compiles per gene choice like an
    /// additive table ([`gene_table::GeneTable`]).
    fn layer_embedding(&self) -> Option<&dyn embedding::LayerEmbedding> {
        None
    }
    /// The input resolutions of space `space` at which the predictor prices every member,
    /// when it is limited to some (an imported table covers the resolutions it was measured
    /// at); `None`: no known limit. A search proposes only these resolutions.
    fn resolutions_covered(&self, _space: &str) -> Option<Vec<u32>> {
        None
    }
    /// The spaces whose members the predictor was fitted on (or built for); a job of another
    /// space is refused ([`check_serves`]). `None`: not recorded (a file written before hwnas
    /// recorded it).
    fn spaces_served(&self) -> Option<Vec<String>> {
        None
    }
    /// The precision of the deployed models whose measurements the predictor was fitted on
    /// (the saved document's `precision`; `fp32` for files without it and for imports). A job
    /// deploying another precision is refused ([`check_precision`]).
    fn precision(&self) -> Precision {
        Precision::Fp32
    }
}

/// Refuses to price members of `space` with a predictor fitted on other spaces: its keys,
/// tokens or rates describe other layers, and its numbers would be confident nonsense.
pub fn check_serves(p: &dyn LatencyPredictor, space: &str) -> Result<(), ServeError> {
    match p.spaces_served() {
        Some(fitted_on) if !fitted_on.iter().any(|x| x == space) => {
            Err(ServeError::Space { family: p.family().to_string(), fitted_on, space: space.to_string() })
        }
        _ => Ok(()),
    }
}
