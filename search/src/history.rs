//! A sampling job's record of every evaluated architecture: appended to `history.jsonl` as
//! each generation completes (by [`crate::jobdir::JobDir`], whose checkpoint says how many
//! rows are committed, so rows of a generation that was killed halfway are dropped on
//! resume), and exported at the end to `history.parquet`, one row per evaluation.

use crate::evaluate::Evaluation;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use spaces::SearchSpace;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Why the history's Parquet file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot {action} {}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {action} {} as Parquet", .path.display())]
    Parquet {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
    #[error(transparent)]
    Frame(#[from] PolarsError),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub generation: usize,
    #[serde(flatten)]
    pub eval: Evaluation,
}

/// Writes the history as Parquet: generation, arch (the space's JSON encoding), latency_ms
/// (the constrained predictor), latency_ms_<label> for further predictors, accuracy,
/// objective (null when the strategy gives the member none) and feasible.
pub fn write_parquet(
    path: &Path,
    rows: &[Record],
    space: &dyn SearchSpace,
    labels: &[String],
) -> Result<(), HistoryError> {
    let mut cols: Vec<Column> = vec![
        Column::new("generation".into(), rows.iter().map(|r| r.generation as u32).collect::<Vec<_>>()),
        Column::new("arch".into(), rows.iter().map(|r| space.to_json(&r.eval.genome).to_string()).collect::<Vec<_>>()),
        Column::new("latency_ms".into(), rows.iter().map(|r| r.eval.latency_ms[0]).collect::<Vec<_>>()),
    ];
    for (i, label) in labels.iter().enumerate().skip(1) {
        cols.push(Column::new(
            format!("latency_ms_{label}").into(),
            rows.iter().map(|r| r.eval.latency_ms[i]).collect::<Vec<_>>(),
        ));
    }
    cols.push(Column::new("accuracy".into(), rows.iter().map(|r| r.eval.accuracy).collect::<Vec<_>>()));
    cols.push(Column::new("objective".into(), rows.iter().map(|r| r.eval.objective).collect::<Vec<_>>()));
    cols.push(Column::new("feasible".into(), rows.iter().map(|r| r.eval.feasible).collect::<Vec<_>>()));
    let mut df = DataFrame::new(rows.len(), cols)?;
    let f = File::create(path).map_err(|source| HistoryError::Io { action: "create", path: path.into(), source })?;
    ParquetWriter::new(f).finish(&mut df).map_err(|source| HistoryError::Parquet {
        action: "write",
        path: path.into(),
        source,
    })?;
    Ok(())
}

/// Reads back a history Parquet file (for tests and downstream analysis).
pub fn read_parquet(path: &Path) -> Result<DataFrame, HistoryError> {
    let f = File::open(path).map_err(|source| HistoryError::Io { action: "read", path: path.into(), source })?;
    ParquetReader::new(f).finish().map_err(|source| HistoryError::Parquet { action: "read", path: path.into(), source })
}
