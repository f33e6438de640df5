//! The crate's errors, one enum per concern, every message in one place.
//!
//! - [`PredictError`]: a predictor could not answer for a network;
//! - [`DatasetError`]: a measurement file could not be read or is not valid (messages name the
//!   row or column); [`SplitError`]: a train/test split or fold that the rows do not allow;
//! - [`DocumentError`]: a predictor file could not be read or written;
//! - [`TableError`]: a lookup table's entries are not a valid table;
//! - [`FitError`]: a predictor could not be fitted;
//! - [`ImportError`]: a published predictor (OFA's YAML tables, Single-Path NAS's Pixel 1
//!   JSON, OFA's accuracy predictor `.pth`) could not be imported;
//! - [`MlpError`]: training, running or (de)serialising the MLP;
//! - [`AccuracyError`]: an accuracy predictor could not answer for a member;
//! - [`ServeError`]: a predictor refuses a job (another space, another precision);
//! - [`RowPredictError`], [`PlotError`]: scoring and plotting.
//!
//! Errors of other libraries (io, serde_json, polars, tch, smartcore, the spaces crate) are
//! kept as sources, so the binary prints the whole chain; a variant's own message never
//! repeats its source's.

use latency::modelfile::Precision;
use serde_json::Value;
use spaces::ir::KeyError;
use spaces::ArchError;
use std::path::PathBuf;

pub use crate::torch_file::TorchFileError;

/// Why a predictor could not answer.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// A lookup table has no entry for a layer and its fallback policy is to refuse.
    #[error("no lookup-table entry for layer `{layer}` (key {key})")]
    MissingKey { layer: String, key: String },
    /// Per-resolution tables (OFA's) without one for the network's resolution.
    #[error("{source_name}: no table for resolution {resolution}; the tables cover resolutions {}", join(covered))]
    UncoveredResolution { source_name: String, resolution: u32, covered: Vec<u32> },
    /// A layer the predictor's model does not describe (a kind it never saw, an op outside its table).
    #[error("layer `{layer}`: {why}")]
    UnknownLayer { layer: String, why: String },
    /// The kernel predictor's random forest could not evaluate.
    #[error("the kernel predictor's forest failed on layer `{layer}`")]
    Forest {
        layer: String,
        #[source]
        source: smartcore::error::Failed,
    },
}

/// `values` as a comma-separated list.
fn join<T: std::fmt::Display>(values: &[T]) -> String {
    values.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
}

/// Why a measurement file (CSV or Parquet) could not be read: the file, its columns, or a
/// row, named.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The problems of one file's contents, under the file's name.
    #[error("reading dataset {}", .path.display())]
    In {
        path: PathBuf,
        #[source]
        source: Box<DatasetError>,
    },
    #[error("opening {}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening {}", .path.display())]
    OpenCsv {
        path: PathBuf,
        #[source]
        source: polars::error::PolarsError,
    },
    #[error("parsing CSV {}", .path.display())]
    Csv {
        path: PathBuf,
        #[source]
        source: polars::error::PolarsError,
    },
    #[error("parsing Parquet {}", .path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: polars::error::PolarsError,
    },
    #[error("{}: unknown dataset format (expected .csv or .parquet)", .path.display())]
    Format { path: PathBuf },
    /// A column that does not convert to the type it must have (`text`, `numeric`).
    #[error("column `{column}` is not {expected}")]
    ColumnType {
        column: String,
        expected: &'static str,
        #[source]
        source: polars::error::PolarsError,
    },
    #[error(transparent)]
    Frame(#[from] polars::error::PolarsError),
    #[error("no `{column}` column (columns: {columns})")]
    NoValueColumn { column: String, columns: String },
    #[error("no `arch` column for the network rows (columns: {columns})")]
    NoArchColumn { columns: String },
    #[error("row {row}: empty `{column}`")]
    EmptyValue { row: usize, column: String },
    #[error("row {row}: `{column}` is {value}")]
    NotFinite { row: usize, column: String, value: f64 },
    #[error(
        "row {row}: `{column}` is {shown}; a measured latency is positive and at most {} ms",
        crate::dataset::MAX_LATENCY_MS
    )]
    Latency { row: usize, column: String, shown: String },
    /// A `precision` cell that is no precision (the reason as the precision parser gives it).
    #[error("row {row}: `precision`: {why}")]
    Precision { row: usize, why: String },
    /// A `layer` or `layer-in-network` row without its key.
    #[error("row {row}: {kind} row without `key`")]
    NoKey { row: usize, kind: &'static str },
    #[error("row {row}: no `arch`")]
    NoArch { row: usize },
    #[error("row {row}: `space` is `{cell}` but the space given is `{given}` (pass --space {cell}, or none)")]
    SpaceMismatch { row: usize, cell: String, given: String },
    #[error("row {row}: no `space` column or cell, and no --space given")]
    NoSpace { row: usize },
    /// A `space` that names no space.
    #[error(transparent)]
    Space(#[from] ArchError),
    #[error("row {row}: arch `{text}`")]
    Arch {
        row: usize,
        text: String,
        #[source]
        source: ArchError,
    },
    #[error("row {row}: resolution {value} is not a positive integer")]
    Resolution { row: usize, value: f64 },
    #[error(
        "rows {first} and {row} measure the same architecture at resolution {resolution} (`{text}`): keep one \
         measurement per architecture (average repeats before fitting)"
    )]
    Repeated { first: usize, row: usize, resolution: u32, text: String },
    #[error(
        "{dataset} mixes precisions {}: fit one precision at a time (e.g. `hwnas fit --precision {}`)",
        join(.precisions),
        .precisions[0]
    )]
    MixedPrecisions { dataset: String, precisions: Vec<Precision> },
    #[error("{dataset} has no rows in precision {precision} (its rows are {})", join(.there))]
    NoRowsInPrecision { dataset: String, precision: Precision, there: Vec<Precision> },
}

/// A split of the architectures that their number does not allow.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("train fraction {0} is not in (0, 1)")]
    Fraction(f64),
    #[error(
        "train count {count} must be between 1 and {} (one less than the {architectures} architectures)",
        .architectures.saturating_sub(1)
    )]
    Count { count: usize, architectures: usize },
    #[error("k-fold needs 2 <= k <= {architectures} architectures, got {k}")]
    Folds { k: usize, architectures: usize },
}

/// Why a predictor file (the versioned JSON document and, for MLPs, its weights) could not
/// be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("reading predictor {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing predictor {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("creating {} for the predictor", .dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a JSON predictor file", .path.display())]
    NotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: missing field `{field}`", .path.display())]
    MissingField { path: PathBuf, field: &'static str },
    #[error("{}: `format` is {found}, expected \"{}\"", .path.display(), crate::FORMAT)]
    Format { path: PathBuf, found: Value },
    #[error("{}: predictor version {found}; this build reads version {} only", .path.display(), crate::VERSION)]
    Version { path: PathBuf, found: u64 },
    #[error("{}: `version` must be the number {}, not {found}", .path.display(), crate::VERSION)]
    VersionType { path: PathBuf, found: Value },
    #[error("{}: `family` must be a string", .path.display())]
    FamilyType { path: PathBuf },
    #[error("{}: a `{found}` predictor, expected `{expected}`", .path.display())]
    WrongFamily { path: PathBuf, found: String, expected: String },
    #[error("{}: malformed `{family}` predictor", .path.display())]
    Malformed {
        path: PathBuf,
        family: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: unknown predictor family `{family}` (lut, kernel, mlp, flops, spnas, ofa-lut)", .path.display())]
    UnknownFamily { path: PathBuf, family: String },
    #[error(
        "{}: `{family}` is not an accuracy predictor family ({}, {})",
        .path.display(),
        crate::accuracy::FAMILY,
        crate::ofa_accuracy::FAMILY
    )]
    NotAccuracy { path: PathBuf, family: String },
    /// A family's fields that serialise to something other than a JSON object.
    #[error("predictor body must be a JSON object, got {0}")]
    Body(Value),
    #[error("serialising the predictor")]
    Serialize(#[source] serde_json::Error),
    #[error("{}: the predictor document is not an object", .path.display())]
    NotObject { path: PathBuf },
    /// A `precision` string that is no precision (the reason as the precision parser gives it).
    #[error("{}: field `{}`: {why}", .path.display(), crate::precision::FIELD)]
    Precision { path: PathBuf, why: String },
    #[error("{}: `{}` must be fp32, fp16 or int8, not {found}", .path.display(), crate::precision::FIELD)]
    PrecisionType { path: PathBuf, found: Value },
    #[error("{}: trained on features {found:?}, this build computes {expected:?}", .path.display())]
    Features { path: PathBuf, found: Vec<String>, expected: Vec<String> },
    #[error("{}: {means} physical means and {deviations} deviations, expected {expected} each", .path.display())]
    Physical { path: PathBuf, means: usize, deviations: usize, expected: usize },
    #[error("{}: weights take {weights} inputs, the encoding has {encoding}", .path.display())]
    Inputs { path: PathBuf, weights: usize, encoding: usize },
    #[error("{}: an `{}` predictor for `{space}` trained on `{trained_on}`?", .path.display(), crate::ofa_accuracy::FAMILY)]
    OfaAccuracy { path: PathBuf, space: String, trained_on: String },
    #[error("{}: layer widths {found:?}, OFA's predictor has {expected:?}", .path.display())]
    Widths { path: PathBuf, found: Vec<usize>, expected: Vec<usize> },
    #[error("{}: no file name for the weights beside it", .path.display())]
    NoFileName { path: PathBuf },
    /// The weights file beside the document.
    #[error(transparent)]
    Weights(#[from] MlpError),
    /// A lookup table's entries.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A lookup table's entries, under the file's name.
    #[error("{}", .path.display())]
    InvalidTable {
        path: PathBuf,
        #[source]
        source: TableError,
    },
}

/// Why a lookup table's entries do not make a table.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("lookup-table entry {key} has a non-finite latency {ms}")]
    NotFinite { key: String, ms: f64 },
    #[error("lookup-table key {0} appears twice")]
    Repeated(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A covered space that is no space.
    #[error(transparent)]
    Space(#[from] ArchError),
    #[error("an OFA lookup table describes an ofa-* space, not `{0}`")]
    NotOfaSpace(String),
    #[error("resolution {0} has two tables")]
    TwoTables(u32),
    #[error("an OFA lookup table without any resolution")]
    NoResolution,
}

/// Why a predictor could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Predict(#[from] PredictError),
    #[error(transparent)]
    Space(#[from] ArchError),
    #[error(transparent)]
    Mlp(#[from] MlpError),
    #[error("unknown predictor family `{0}` ({families})", families = crate::train::FAMILIES.join(", "))]
    UnknownFamily(String),
    #[error("unknown fallback policy `{0}` ({policies})", policies = crate::lut::FALLBACKS.join(", "))]
    UnknownFallback(String),
    #[error("unknown flops variant `{0}` (macs, macs+memory)")]
    UnknownVariant(String),
    #[error(
        "{dataset}: none of the {networks} training networks has layer-in-network rows (profile them with \
         `hwnas profile --networks N --per-layer`)"
    )]
    NoLayersInNetworks { dataset: String, networks: usize },
    #[error(
        "the cost-model fallback needs at least 3 entries whose layers a covered space has; the table has {found} \
         (coverage: {coverage})"
    )]
    CostModelEntries { found: usize, coverage: String },
    #[error("the macs-linear fallback needs at least 3 entries with MACs and memory; the table has {0}")]
    MacsLinearEntries(usize),
    #[error("{networks} networks but {latencies} latencies")]
    Latencies { networks: usize, latencies: usize },
    #[error("{rows} rows but {targets} targets")]
    Targets { rows: usize, targets: usize },
    #[error("cannot fit a lookup table to zero networks")]
    NoNetworks,
    /// The source predictor of a transfer fit could not price a layer.
    #[error("source predictor")]
    SourcePredictor(#[source] PredictError),
    #[error("no layer has a lookup-table value to train the kernel forests on")]
    NoKernelTargets,
    #[error("{kind} features")]
    Features {
        kind: String,
        #[source]
        source: smartcore::error::Failed,
    },
    #[error("fitting the {kind} forest")]
    Forest {
        kind: String,
        #[source]
        source: smartcore::error::Failed,
    },
    #[error("the flops baseline needs at least 3 networks, got {0}")]
    FlopsNetworks(usize),
    #[error(
        "--predictor auto cross-validates on the training networks and needs at least {least} architectures; got {0}",
        least = crate::auto::MIN_ARCHITECTURES
    )]
    AutoArchitectures(usize),
    #[error(
        "--from needs a predictor with per-layer costs (lut, ofa-lut, auto, kernel, flops); a `{0}` predictor \
         prices whole networks only"
    )]
    NotPerLayer(String),
    #[error("the MLP's linear path did not solve (non-finite coefficients)")]
    LinearPath,
}

/// Why a published predictor could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// OFA's YAML: a line that is neither `key:` nor `key: {…}`.
    #[error("line {line}: expected `key:` or `key: {{…}}`, got `{text}`")]
    YamlLine { line: usize, text: String },
    #[error("line {0}: indented field outside an entry")]
    YamlOrphan(usize),
    #[error("line {0}: expected `name: value`")]
    YamlField(usize),
    #[error("line {line}: `{text}` is not a number")]
    YamlNumber {
        line: usize,
        text: String,
        #[source]
        source: std::num::ParseFloatError,
    },
    #[error("line {line}: unknown field `{name}` (count, mean, std, var)")]
    YamlUnknownField { line: usize, name: String },
    #[error("entry `{0}` has no valid `mean` (is the file truncated?)")]
    NoMean(String),
    #[error("layer {layer} ({key}) has no OFA lookup-table counterpart")]
    NoCounterpart { layer: String, key: String },
    #[error("no `expanded_conv-…` entries: not an OFA lookup table")]
    NotOfaTable,
    #[error("this is a {table} lookup table (block keys like `{first}`), but space `{space}` is {family}")]
    OtherFamily { table: &'static str, first: String, space: String, family: &'static str },
    #[error("the block keys mix OFA-MobileNetV3 (`-se:…-hs:…`) and ProxylessNAS layouts")]
    MixedFamilies,
    #[error("cannot list {}", .path.display())]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: resolution not in the file name (`{{R}}_lookup_table.yaml`); pass --resolution", .path.display())]
    NoResolution { path: PathBuf },
    #[error("{}: no `*_lookup_table.yaml` files", .path.display())]
    NoTables { path: PathBuf },
    #[error("OFA tables describe the ofa-mbv3-* and ofa-proxyless-* spaces, not `{0}`")]
    NotOfaSpace(String),
    #[error(transparent)]
    Space(#[from] ArchError),
    #[error("reading {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {}", .path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<ImportError>,
    },
    /// A problem of one file's contents, under its name.
    #[error("{}", .path.display())]
    In {
        path: PathBuf,
        #[source]
        source: Box<ImportError>,
    },
    #[error("{}: no entry `{key}` (layer {layer})", .path.display())]
    NoEntry { path: PathBuf, key: String, layer: String },
    #[error(transparent)]
    Table(#[from] TableError),
    /// Single-Path NAS's JSON.
    #[error("{}: expected {{\"layer\": {{\"option\": ms}}}}", .path.display())]
    SpnasJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: layer `{layer}` is not 0 … {last}", .path.display())]
    SpnasLayer { path: PathBuf, layer: String, last: usize },
    #[error("{}: layer {layer} option `{option}` is not 0 … 3", .path.display())]
    SpnasOption { path: PathBuf, layer: String, option: String },
    #[error("{}: layer {layer} lacks one of the four options (or has a non-positive one)", .path.display())]
    SpnasIncomplete { path: PathBuf, layer: usize },
    /// OFA's accuracy predictor.
    #[error(
        "OFA's accuracy predictor serves {spaces:?} (trained on {trained_on}), not `{0}`",
        spaces = crate::ofa_accuracy::SPACES,
        trained_on = crate::ofa_accuracy::TRAINED_ON
    )]
    OfaAccuracySpace(String),
    #[error(transparent)]
    Torch(#[from] TorchFileError),
    #[error("{}: no tensor `{name}`", .path.display())]
    NoTensor { path: PathBuf, name: String },
    #[error("{}: `{name}` has shape {found:?}, OFA's predictor has {expected:?}", .path.display())]
    TensorShape { path: PathBuf, name: String, found: Vec<usize>, expected: Vec<usize> },
    #[error("{}: unexpected tensor `{name}`: not OFA's 4-layer accuracy predictor", .path.display())]
    ExtraTensor { path: PathBuf, name: String },
    #[error(transparent)]
    Mlp(#[from] MlpError),
}

/// Why the MLP could not be trained, run, saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum MlpError {
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    #[error("an MLP needs at least 2 examples with targets, got {inputs} inputs and {targets} targets")]
    Examples { inputs: usize, targets: usize },
    #[error("a linear path of {weights} weights for {inputs} inputs")]
    LinearPath { weights: usize, inputs: usize },
    /// A variable training should have created and did not.
    #[error("training left no {0}")]
    Untrained(String),
    #[error("not a chain of fully connected layers ending in one output")]
    NotChain,
    #[error("an input has {found} values, the network takes {expected}")]
    InputSize { found: usize, expected: usize },
    #[error("writing {}", .path.display())]
    WriteWeights {
        path: PathBuf,
        #[source]
        source: tch::TchError,
    },
    #[error("reading {}", .path.display())]
    ReadWeights {
        path: PathBuf,
        #[source]
        source: tch::TchError,
    },
    #[error("{}: no {name}", .path.display())]
    NoTensor { path: PathBuf, name: String },
    #[error("{}: fc{layer} has weight shape {weight:?} and bias shape {bias:?}", .path.display())]
    LayerShape { path: PathBuf, layer: usize, weight: Vec<i64>, bias: Vec<i64> },
    #[error("{}: not a chain of fully connected layers ending in one output", .path.display())]
    FileNotChain { path: PathBuf },
    #[error("{}: empty skip.bias", .path.display())]
    EmptySkipBias { path: PathBuf },
    #[error("{}: skip.weight has {skip} inputs, fc0 {first}", .path.display())]
    SkipInputs { path: PathBuf, skip: usize, first: usize },
}

/// Why an accuracy predictor could not answer for a member.
#[derive(Debug, thiserror::Error)]
pub enum AccuracyError {
    #[error("this accuracy predictor was trained on `{trained_on}`, not `{space}`")]
    TrainedOn { trained_on: String, space: String },
    #[error("encoding has {found} inputs, the weights take {expected}")]
    Encoding { found: usize, expected: usize },
    #[error("this OFA accuracy predictor serves `{serves}`, not `{space}`")]
    Serves { serves: String, space: String },
    #[error("OFA's encoding takes 20 ks, 20 e and 5 d values, got {ks}, {e} and {d}")]
    SpecLengths { ks: usize, e: usize, d: usize },
    #[error(
        "resolution {0} is outside {low}–{high}, the range OFA's accuracy predictor encodes",
        low = crate::ofa_accuracy::RESOLUTIONS.start(),
        high = crate::ofa_accuracy::RESOLUTIONS.end()
    )]
    Resolution(u32),
    #[error("d[{stage}] is {depth}, not one of {choices:?}")]
    Depth { stage: usize, depth: u32, choices: Vec<u32> },
    #[error("{gene}[{slot}] is {value}, not one of {choices:?}")]
    Choice { gene: &'static str, slot: usize, value: u32, choices: Vec<u32> },
    #[error("`{space}` has no gene {gene}")]
    NoGene { space: String, gene: String },
    /// A gene other than OFA's encoding reads there: `found` and `needs` are `name [choices]`.
    #[error("`{space}` gene {index} is {found}, OFA's encoding needs {needs}")]
    Gene { space: String, index: usize, found: String, needs: String },
    #[error("`{0}` genes do not end in OFA's single resolution gene r")]
    NoResolutionGene(String),
    #[error("a genome of {found} genes; `{space}` has {expected}")]
    GenomeLength { found: usize, space: String, expected: usize },
    #[error(transparent)]
    Mlp(#[from] MlpError),
}

/// Why a latency predictor refuses a job.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "this `{family}` latency predictor was fitted on {}, not on `{space}`: fit one on measurements of `{space}`",
        .fitted_on.iter().map(|x| format!("`{x}`")).collect::<Vec<_>>().join(", ")
    )]
    Space { family: String, fitted_on: Vec<String>, space: String },
    #[error(
        "this `{family}` latency predictor was fitted on {fitted} measurements, but the job deploys {job} models: \
         fit one on {job} measurements (`hwnas profile --precision {job}`, then `hwnas fit --precision {job}`), \
         or pass --allow-precision-mismatch to price {job} models with {fitted} latencies anyway"
    )]
    Precision { family: String, fitted: Precision, job: Precision },
}

/// A predictor that could not answer for one measured network, named by its architecture.
#[derive(Debug, thiserror::Error)]
#[error("predicting {arch_id}")]
pub struct RowPredictError {
    pub arch_id: String,
    #[source]
    pub source: PredictError,
}

/// Why a plot could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("creating {}", .dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// plotters' error, of whichever backend (PNG or SVG) drew.
    #[error("drawing plot")]
    Draw(#[source] Box<dyn std::error::Error + Send + Sync>),
}
