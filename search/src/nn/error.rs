//! Why a tch model, supernet, data source, checkpoint or training run failed: one enum for
//! the `nn` modules, with libtorch's, the file system's and the IR's errors as sources.

use spaces::ir::WeightsError;
use spaces::ArchError;
use std::path::PathBuf;
use tch::TchError;

#[derive(Debug, thiserror::Error)]
pub enum NnError {
    #[error(transparent)]
    Torch(#[from] TchError),
    /// A file or directory operation (`read`, `write`, `create`, `clear`, `list`) on `path`.
    #[error("cannot {action} {}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Tensors in a safetensors file could not be written or read: a model's weights
    /// (`load`, `save`) or an optimizer's state (`read`, `write`).
    #[error("cannot {action} {}", .path.display())]
    Tensors {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: TchError,
    },
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Space(#[from] ArchError),

    // Data sources.
    #[error("CIFAR has 10 or 100 classes, not {0}")]
    CifarClasses(u32),
    #[error("{}: {bytes} bytes is not a whole number of {record}-byte CIFAR records", .path.display())]
    CifarSize { path: PathBuf, bytes: usize, record: usize },
    #[error("{}: label {label} out of range for {classes} classes", .path.display())]
    CifarLabel { path: PathBuf, label: u8, classes: u32 },
    #[error("{name} not found in {} (expected the CIFAR binary version)", .dir.display())]
    CifarMissing { name: String, dir: PathBuf },
    #[error("cannot list {} (expected train/ and val/ class folders)", .dir.display())]
    ImageFolder {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no .jpg/.jpeg/.png images under {}/<class>/", .dir.display())]
    NoImages { dir: PathBuf },
    #[error("cannot decode {}", .path.display())]
    Decode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("synthetic data is `synthetic:N:CLASSES`, not `{0}`")]
    SyntheticSpec(String),
    #[error("unknown evaluation data `{0}` (cifar10:DIR, cifar100:DIR, imagefolder:DIR, synthetic:N:CLASSES)")]
    UnknownData(String),

    // Training and its checkpoints.
    #[error("the data set has fewer examples than one batch of {0}")]
    FewerThanBatch(usize),
    #[error("no training resolution given")]
    NoResolution,
    #[error("no checkpoint in {}", .dir.display())]
    NoCheckpoint { dir: PathBuf },
    #[error("training diverged at step {step} (loss {loss}); lower the learning rate")]
    Diverged { step: usize, loss: f64 },
    #[error("{} is not an hwnas checkpoint", .path.display())]
    NotACheckpoint {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{} names {}, which has no {}", .pointer.display(), .dir.display(), super::checkpoint::WEIGHTS)]
    NoWeights { pointer: PathBuf, dir: PathBuf },
    #[error("cannot serialise the checkpoint state")]
    SerializeState(#[source] serde_json::Error),
    #[error("cannot publish the checkpoint")]
    Publish(#[source] std::io::Error),
    #[error("{}: optimizer state `{key}` belongs to no variable of this model", .path.display())]
    StrayOptimizerState { path: PathBuf, key: String },

    // Networks and supernets.
    #[error("checkpoint architecture is not a valid `{space}` member")]
    CheckpointArch {
        space: String,
        #[source]
        source: ArchError,
    },
    #[error(
        "space `{0}` has no weight-shared supernet (ofa-*, singlepath, fbnet, fbnet-cifar100 do); train one \
         architecture with --arch/--preset"
    )]
    NoSupernet(String),
    #[error("`{0}` is not a once-for-all space")]
    NotOfa(String),
    #[error("`{0}` is not an FBNet space")]
    NotFbNet(String),
    #[error("{0}: expected the k3_e1 block")]
    NotK3E1(String),
    #[error("the weights do not fit the network")]
    WeightsMismatch(#[source] WeightsError),
    #[error("tensor to f32 values")]
    ToF32(#[source] TchError),

    // TorchScript.
    #[error("tracing the model failed")]
    Trace(#[source] TchError),
    #[error("cannot {action} TorchScript {} {}", .preposition, .path.display())]
    TorchScript {
        action: &'static str,
        preposition: &'static str,
        path: PathBuf,
        #[source]
        source: TchError,
    },

    // OFA's supernet checkpoints.
    #[error("cannot read {} as a torch checkpoint", .path.display())]
    TorchFile {
        path: PathBuf,
        #[source]
        source: predictors::TorchFileError,
    },
    #[error("{}: tensor {name}", .path.display())]
    CheckpointTensor {
        path: PathBuf,
        name: String,
        #[source]
        source: WeightsError,
    },
    #[error("{file}: tensor {name} appears twice (under an old and a new OFA name)")]
    TensorTwice { file: String, name: String },
    #[error("{file} is {what}, not an `{space}` supernet checkpoint")]
    OtherSupernet { file: String, what: String, space: String },
    #[error("{file} is {what}; hwnas loads the supernets of {spaces}")]
    NoFittingSpace { file: String, what: String, spaces: String },
    #[error("{file}: {} of the {total} tensors of an `{space}` supernet are missing: {}", .missing.len(), .missing.join(", "))]
    MissingTensors { file: String, total: usize, space: String, missing: Vec<String> },
    /// `found`: `{OFA name} has shape {shape}`; `expected`: `{hwnas name} is {shape}`.
    #[error("{file}: tensor {found}, an `{space}` supernet's {expected}")]
    TensorShape { file: String, found: String, space: String, expected: String },
    #[error("{file}: tensors an `{space}` supernet does not have: {}", .extra.join(", "))]
    ExtraTensors { file: String, space: String, extra: Vec<String> },
    #[error("the VarStore holds {found} variables, an `{space}` supernet has {expected}")]
    VariableCount { found: usize, space: String, expected: usize },
    #[error("the VarStore lacks {0}")]
    MissingVariable(String),
}
