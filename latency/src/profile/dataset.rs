//! The Parquet dataset the predictors read: one row per record, latency in ms.
//! Layer rows are looked up by `key`, network rows by `space` + `arch`; a network timed with
//! `--per-layer` adds one `layer-in-network` row per layer (`key` and the network's `arch`).

use super::layers::LayerTime;
use super::record::Record;
use polars::prelude::*;
use std::path::{Path, PathBuf};

pub const DATASET_FILE: &str = "latency.parquet";

/// Why the dataset could not be written; each names the file, with polars' or the io error
/// as the source.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot build the dataset")]
    Frame(#[source] PolarsError),
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
    #[error("cannot move {} into place", path.display())]
    Rename {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes `records` to `path` (atomically: a temporary file renamed into place).
pub fn write_parquet(records: &[Record], path: &Path) -> Result<(), DatasetError> {
    let mut df = frame(records).map_err(DatasetError::Frame)?;
    let tmp = path.with_extension("parquet.part");
    let file = std::fs::File::create(&tmp).map_err(|source| DatasetError::Create { path: tmp.clone(), source })?;
    ParquetWriter::new(file).finish(&mut df).map_err(|source| DatasetError::Write { path: tmp.clone(), source })?;
    std::fs::rename(&tmp, path).map_err(|source| DatasetError::Rename { path: path.into(), source })
}

/// The `kind` of a dataset row holding one layer's share of a network's time (`--per-layer`);
/// the other rows carry their model's [`super::record::Kind`].
pub const LAYER_IN_NETWORK: &str = "layer-in-network";

/// One dataset row: a record, or one layer of a network record's per-layer times.
struct Row<'a> {
    rec: &'a Record,
    layer: Option<(&'a LayerTime, f64)>,
}

impl Row<'_> {
    /// The record's model kind, or [`LAYER_IN_NETWORK`] for a layer's row.
    fn kind(&self) -> &'static str {
        if self.layer.is_some() {
            LAYER_IN_NETWORK
        } else {
            self.rec.model.kind.as_str()
        }
    }
    /// The network's statistic scaled by the layer's share of its op time, or the record's own.
    fn scaled(&self, us: f64) -> f64 {
        ms(us) * self.layer.map_or(1.0, |(_, share)| share)
    }
    fn layer(&self) -> Option<&LayerTime> {
        self.layer.map(|(l, _)| l)
    }
    /// A statistic of the record's own samples: none for a layer-in-network row.
    fn own(&self, v: f64) -> Option<f64> {
        self.layer.is_none().then_some(v)
    }
}

/// Every record's row, each network record with per-layer times followed by one
/// `layer-in-network` row per layer: the layer's share of the network's op profile times the
/// network's latency (so a network's layer rows sum to its latency).
fn rows(records: &[Record]) -> Vec<Row<'_>> {
    let mut rows = Vec::new();
    for rec in records {
        rows.push(Row { rec, layer: None });
        if let Some(t) = &rec.layer_times {
            rows.extend(t.layers.iter().map(|l| Row { rec, layer: Some((l, t.share(l))) }));
        }
    }
    rows
}

fn col<T>(name: &str, rows: &[Row], f: impl Fn(&Row) -> T) -> Column
where
    Series: NamedFrom<Vec<T>, [T]>,
{
    Column::new(name.into(), rows.iter().map(f).collect::<Vec<T>>())
}

fn ms(us: f64) -> f64 {
    us / 1000.0
}

pub fn frame(records: &[Record]) -> PolarsResult<DataFrame> {
    let rows = rows(records);
    let own = |r: &Row, f: &dyn Fn(&Record) -> Vec<f64>| if r.layer.is_none() { f(r.rec) } else { Vec::new() };
    let kept_ms =
        |r: &Record| r.samples_us.iter().zip(&r.kept).filter(|(_, k)| **k).map(|(x, _)| ms(*x)).collect::<Vec<f64>>();
    let all_ms = |r: &Record| r.samples_us.iter().map(|x| ms(*x)).collect::<Vec<f64>>();
    let samples: Vec<Series> = rows.iter().map(|r| Series::new("".into(), own(r, &all_ms))).collect();
    let kept: Vec<Series> = rows.iter().map(|r| Series::new("".into(), own(r, &kept_ms))).collect();
    let columns = vec![
        col("kind", &rows, |r| r.kind().to_string()),
        col("key", &rows, |r| r.layer().map_or_else(|| r.rec.model.key.clone(), |l| l.key.clone())),
        col("space", &rows, |r| r.rec.model.space.clone()),
        col("arch", &rows, |r| r.rec.model.arch.clone()),
        col("resolution", &rows, |r| r.rec.model.resolution),
        col("precision", &rows, |r| r.rec.model.precision.as_str().to_string()),
        col("int8_io", &rows, |r| r.rec.model.int8_io),
        col("latency_ms", &rows, |r| r.scaled(r.rec.summary.median_us)),
        col("mean_ms", &rows, |r| r.scaled(r.rec.summary.mean_us)),
        col("std_ms", &rows, |r| r.own(ms(r.rec.summary.std_us))),
        col("min_ms", &rows, |r| r.own(ms(r.rec.summary.min_us))),
        col("cv", &rows, |r| r.own(r.rec.summary.cv)),
        col("n_kept", &rows, |r| r.rec.summary.n_kept as u32),
        col("n_rejected", &rows, |r| r.rec.summary.n_rejected as u32),
        col("rounds", &rows, |r| r.rec.rounds),
        Column::new("samples_ms".into(), samples),
        Column::new("kept_ms".into(), kept),
        col("layer_index", &rows, |r| r.layer().map(|l| l.index)),
        col("layer_name", &rows, |r| r.layer().map(|l| l.name.clone())),
        col("op_ms", &rows, |r| r.layer().map(|l| ms(l.op_us))),
        col("share", &rows, |r| r.layer.map(|(_, share)| share)),
        col("device", &rows, |r| r.rec.device.clone()),
        col("model", &rows, |r| r.rec.device_info.model.clone()),
        col("soc", &rows, |r| r.rec.device_info.soc.clone()),
        col("runtime", &rows, |r| r.rec.runtime.runtime.clone()),
        col("flags", &rows, |r| r.rec.runtime.flags.join(" ")),
        col("binary_sha256", &rows, |r| r.rec.runtime.binary_sha256.clone()),
        col("model_sha256", &rows, |r| r.rec.model_sha256.clone()),
        col("flagged", &rows, |r| r.rec.flagged()),
        col("warnings", &rows, |r| r.rec.warnings.join("; ")),
        col("temperature_c", &rows, |r| r.rec.device_info.temperature_c),
        col("timestamp", &rows, |r| r.rec.timestamp_ms),
    ];
    DataFrame::new(rows.len(), columns)
}
