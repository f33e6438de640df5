//! The Parquet dataset the predictors read: one row per record, latency in ms.
//! Layer rows are looked up by `key`, network rows by `space` + `arch`.

use super::record::Record;
use polars::prelude::*;
use std::path::Path;

pub const DATASET_FILE: &str = "latency.parquet";

/// Writes `records` to `path` (atomically: a temporary file renamed into place).
pub fn write_parquet(records: &[Record], path: &Path) -> Result<(), String> {
    let mut df = frame(records).map_err(|e| format!("cannot build the dataset: {e}"))?;
    let tmp = path.with_extension("parquet.part");
    let file = std::fs::File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    ParquetWriter::new(file).finish(&mut df).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot move {} into place: {e}", path.display()))
}

fn col<T>(name: &str, records: &[Record], f: impl Fn(&Record) -> T) -> Column
where
    Series: NamedFrom<Vec<T>, [T]>,
{
    Column::new(name.into(), records.iter().map(f).collect::<Vec<T>>())
}

fn ms(us: f64) -> f64 {
    us / 1000.0
}

pub fn frame(records: &[Record]) -> PolarsResult<DataFrame> {
    let kept_ms =
        |r: &Record| r.samples_us.iter().zip(&r.kept).filter(|(_, k)| **k).map(|(x, _)| ms(*x)).collect::<Vec<f64>>();
    let samples: Vec<Series> = records
        .iter()
        .map(|r| Series::new("".into(), r.samples_us.iter().map(|x| ms(*x)).collect::<Vec<f64>>()))
        .collect();
    let kept: Vec<Series> = records.iter().map(|r| Series::new("".into(), kept_ms(r))).collect();
    let columns = vec![
        col("kind", records, |r| r.model.kind.as_str().to_string()),
        col("key", records, |r| r.model.key.clone()),
        col("space", records, |r| r.model.space.clone()),
        col("arch", records, |r| r.model.arch.clone()),
        col("resolution", records, |r| r.model.resolution),
        col("precision", records, |r| r.model.precision.as_str().to_string()),
        col("int8_io", records, |r| r.model.int8_io),
        col("latency_ms", records, |r| ms(r.summary.median_us)),
        col("mean_ms", records, |r| ms(r.summary.mean_us)),
        col("std_ms", records, |r| ms(r.summary.std_us)),
        col("min_ms", records, |r| ms(r.summary.min_us)),
        col("cv", records, |r| r.summary.cv),
        col("n_kept", records, |r| r.summary.n_kept as u32),
        col("n_rejected", records, |r| r.summary.n_rejected as u32),
        col("rounds", records, |r| r.rounds),
        Column::new("samples_ms".into(), samples),
        Column::new("kept_ms".into(), kept),
        col("device", records, |r| r.device.clone()),
        col("model", records, |r| r.device_info.model.clone()),
        col("soc", records, |r| r.device_info.soc.clone()),
        col("runtime", records, |r| r.runtime.runtime.clone()),
        col("flags", records, |r| r.runtime.flags.join(" ")),
        col("binary_sha256", records, |r| r.runtime.binary_sha256.clone()),
        col("model_sha256", records, |r| r.model_sha256.clone()),
        col("flagged", records, |r| r.flagged()),
        col("warnings", records, |r| r.warnings.join("; ")),
        col("temperature_c", records, |r| r.device_info.temperature_c),
        col("timestamp", records, |r| r.timestamp_ms),
    ];
    DataFrame::new(records.len(), columns)
}
