//! What a search optimises: latency objectives (one per device), an accuracy source and
//! the MnasNet reward that combines them.

pub mod accuracy;
pub mod latency;
pub mod reward;
pub mod supernet;

pub use accuracy::{AccuracySource, CapacityProxy};
pub use latency::{LatencyObjective, LatencySource};
pub use reward::Reward;

use std::path::PathBuf;

/// What `latency`'s live measurements fail with (still a string there), kept as the source.
pub type MeasureError = Box<dyn std::error::Error + Send + Sync>;

/// Why a latency or accuracy objective could not be loaded or could not answer for a member.
#[derive(Debug, thiserror::Error)]
pub enum ObjectiveError {
    /// A device measurement.
    #[error("latency `{label}`")]
    Measure {
        label: String,
        #[source]
        source: MeasureError,
    },
    #[error("latency predictor `{label}`")]
    Predict {
        label: String,
        #[source]
        source: predictors::PredictError,
    },
    #[error(transparent)]
    Accuracy(#[from] predictors::AccuracyError),
    #[error("accuracy source returned {returned} values for {asked} architectures")]
    AccuracyCount { returned: usize, asked: usize },
    /// A lock another thread panicked while holding (`accuracy cache`, `supernet evaluator`).
    #[error("{0} poisoned")]
    Poisoned(&'static str),
    #[error("cannot load accuracy predictor {path}")]
    LoadAccuracyPredictor {
        path: String,
        #[source]
        source: predictors::DocumentError,
    },
    /// Data, checkpoints and sub-network evaluation of a supernet.
    #[error(transparent)]
    Nn(Box<crate::nn::NnError>),
    #[error("cannot load supernet {}", .dir.display())]
    LoadSupernet {
        dir: PathBuf,
        #[source]
        source: Box<crate::nn::NnError>,
    },
    #[error("{} holds one fixed network, not a supernet", .dir.display())]
    FixedNetwork { dir: PathBuf },
    #[error("{} is a `{found}` supernet, the job searches `{space}`", .dir.display())]
    OtherSpace { dir: PathBuf, found: String, space: String },
    #[error("not a supernet")]
    NotASupernet,
}

impl From<crate::nn::NnError> for ObjectiveError {
    fn from(e: crate::nn::NnError) -> Self {
        ObjectiveError::Nn(Box::new(e))
    }
}
