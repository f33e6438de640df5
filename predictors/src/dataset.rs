//! Measurement datasets: CSV or Parquet tables of whole-network rows
//! (`arch`, `latency_ms`, optional `space`, `resolution`), single-layer rows
//! (`kind = layer`, `key`, `latency_ms`) and layers timed inside networks
//! (`kind = layer-in-network`, `key`, the network's `arch`, `latency_ms`: the layer's share of
//! that network's time), as the profiler writes them and as the HW-NAS-Bench CSVs come
//! (`arch` = dash-joined op names of `fbnet-cifar100`).
//!
//! An optional `precision` column (`fp32`, `fp16`, `int8`; missing or empty: `fp32`) says
//! in which precision the model was deployed: a table measured in int8 does not price
//! fp32 models, so a fit uses rows of one precision ([`Dataset::precision`]).

use crate::DatasetError;
use latency::modelfile::Precision;
use polars::prelude::{CsvReadOptions, DataFrame, DataType, ParquetReader, SerReader};
use serde_json::Value;
use spaces::ir::Network;
use spaces::{Genome, SearchSpace};
use std::collections::BTreeMap;
use std::path::Path;

/// One measured network.
#[derive(Clone, Debug)]
pub struct NetworkRow {
    pub space: String,
    pub genome: Genome,
    /// Identifies the architecture regardless of resolution: splits keep all rows of one arch together.
    pub arch_id: String,
    pub resolution: u32,
    /// The measured target (latency in ms, or accuracy).
    pub value: f64,
    pub network: Network,
    /// The precision the model was deployed in (`fp32` for files without the column).
    pub precision: Precision,
}

/// One measured layer, by lookup-table key.
#[derive(Clone, Debug)]
pub struct LayerRow {
    pub key: String,
    pub latency_ms: f64,
    pub precision: Precision,
    pub source: LayerSource,
}

/// How a layer row was measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerSource {
    /// The layer alone, as a model of its own (`kind = layer`).
    Alone,
    /// Inside a whole network (`kind = layer-in-network`): the network's `arch_id`
    /// ([`NetworkRow::arch_id`]), so a fit uses only its training networks' layers.
    InNetwork { arch_id: String },
}

/// The `kind` of a layer-in-network row, as the profiler writes it.
pub use latency::profile::dataset::LAYER_IN_NETWORK;

#[derive(Clone, Default)]
pub struct Dataset {
    pub source: String,
    pub networks: Vec<NetworkRow>,
    pub layers: Vec<LayerRow>,
}

impl Dataset {
    /// The distinct spaces of the network rows, in order: what a predictor fitted on them serves.
    pub fn spaces(&self) -> Vec<String> {
        self.coverage().into_iter().map(|c| c.space).collect()
    }

    /// The distinct precisions of the rows (network and layer), in order; empty for no rows.
    pub fn precisions(&self) -> Vec<Precision> {
        let mut v: Vec<Precision> =
            self.networks.iter().map(|r| r.precision).chain(self.layers.iter().map(|r| r.precision)).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The one precision of the rows, what a predictor fitted on them prices (`fp32` for a
    /// dataset without rows). Refused when they mix precisions: a fit would average int8
    /// and float latencies into numbers that describe neither; select one first
    /// ([`select_precision`](Self::select_precision), `hwnas fit --precision`).
    pub fn precision(&self) -> Result<Precision, DatasetError> {
        match self.precisions().as_slice() {
            [] => Ok(Precision::Fp32),
            [one] => Ok(*one),
            many => Err(DatasetError::MixedPrecisions { dataset: self.described(), precisions: many.to_vec() }),
        }
    }

    /// Keeps the rows measured in `precision`; refused when there are none, naming the ones
    /// there are.
    pub fn select_precision(&mut self, precision: Precision) -> Result<(), DatasetError> {
        let there = self.precisions();
        if !there.contains(&precision) {
            return Err(DatasetError::NoRowsInPrecision { dataset: self.described(), precision, there });
        }
        self.networks.retain(|r| r.precision == precision);
        self.layers.retain(|r| r.precision == precision);
        Ok(())
    }

    fn described(&self) -> String {
        if self.source.is_empty() {
            "the dataset".into()
        } else {
            format!("dataset {}", self.source)
        }
    }

    /// The same dataset with only the layer rows `keep` selects (its network rows all kept).
    pub fn with_layers(&self, keep: impl Fn(&LayerRow) -> bool) -> Dataset {
        Dataset {
            source: self.source.clone(),
            networks: self.networks.clone(),
            layers: self.layers.iter().filter(|l| keep(l)).cloned().collect(),
        }
    }

    /// Whether any layer row was timed inside a network.
    pub fn has_layers_in_networks(&self) -> bool {
        self.layers.iter().any(|l| matches!(l.source, LayerSource::InNetwork { .. }))
    }

    /// Distinct (space, resolutions) of the network rows, for a lookup table's coverage.
    pub fn coverage(&self) -> Vec<crate::lut::Coverage> {
        let mut by_space: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for r in &self.networks {
            let v = by_space.entry(&r.space).or_default();
            if !v.contains(&r.resolution) {
                v.push(r.resolution);
            }
        }
        by_space
            .into_iter()
            .map(|(s, mut r)| {
                r.sort_unstable();
                crate::lut::Coverage { space: s.to_string(), resolutions: r }
            })
            .collect()
    }
}

/// The largest latency a row may have: 1,000 s per inference.
pub const MAX_LATENCY_MS: f64 = 1e6;

/// Reads `path` (`.csv` or `.parquet`). `space` is used where the file has no `space`
/// column (or an empty cell); `target` names the value column (`latency_ms`, `accuracy`, …).
pub fn load(path: &Path, space: Option<&str>, target: &str) -> Result<Dataset, DatasetError> {
    let df = read_frame(path)?;
    let mut ds =
        from_frame(&df, space, target).map_err(|e| DatasetError::In { path: path.into(), source: Box::new(e) })?;
    ds.source = path.display().to_string();
    Ok(ds)
}

fn read_frame(path: &Path) -> Result<DataFrame, DatasetError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let path_buf = || path.to_path_buf();
    Ok(match ext.as_str() {
        "csv" => CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .map_err(|source| DatasetError::OpenCsv { path: path_buf(), source })?
            .finish()
            .map_err(|source| DatasetError::Csv { path: path_buf(), source })?,
        "parquet" | "pq" => {
            let f = std::fs::File::open(path).map_err(|source| DatasetError::Open { path: path_buf(), source })?;
            ParquetReader::new(f).finish().map_err(|source| DatasetError::Parquet { path: path_buf(), source })?
        }
        _ => return Err(DatasetError::Format { path: path_buf() }),
    })
}

fn strings(df: &DataFrame, name: &str) -> Result<Option<Vec<Option<String>>>, DatasetError> {
    let Ok(c) = df.column(name) else { return Ok(None) };
    let c = c.cast(&DataType::String).map_err(|source| DatasetError::ColumnType {
        column: name.into(),
        expected: "text",
        source,
    })?;
    Ok(Some(c.str()?.iter().map(|s| s.map(str::to_string)).collect()))
}

fn floats(df: &DataFrame, name: &str) -> Result<Option<Vec<Option<f64>>>, DatasetError> {
    let Ok(c) = df.column(name) else { return Ok(None) };
    let c = c.cast(&DataType::Float64).map_err(|source| DatasetError::ColumnType {
        column: name.into(),
        expected: "numeric",
        source,
    })?;
    Ok(Some(c.f64()?.iter().collect()))
}

fn from_frame(df: &DataFrame, default_space: Option<&str>, target: &str) -> Result<Dataset, DatasetError> {
    let n = df.height();
    let columns = || df.get_column_names().iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ");
    let value =
        floats(df, target)?.ok_or_else(|| DatasetError::NoValueColumn { column: target.into(), columns: columns() })?;
    let kind = strings(df, "kind")?;
    let key = strings(df, "key")?;
    let arch = strings(df, "arch")?;
    let space_col = strings(df, "space")?;
    let device = strings(df, "device")?;
    let resolution = floats(df, "resolution")?;
    let precision_col = strings(df, "precision")?;
    let kind_of = |i: usize| kind.as_ref().and_then(|k| k[i].as_deref());
    let is_layer = |i: usize| kind_of(i) == Some("layer");
    let key_of = |i: usize, kind: &'static str| {
        key.as_ref().and_then(|k| k[i].clone()).ok_or(DatasetError::NoKey { row: i + 1, kind })
    };
    if arch.is_none() && (0..n).any(|i| !is_layer(i)) {
        return Err(DatasetError::NoArchColumn { columns: columns() });
    }
    let is_latency = target == "latency_ms";
    let mut spaces_by_name: BTreeMap<String, Box<dyn SearchSpace>> = BTreeMap::new();
    let mut first_row: BTreeMap<(String, u32, Option<String>, Precision), usize> = BTreeMap::new();
    let mut ds = Dataset::default();
    for i in 0..n {
        let row = i + 1;
        let v = value[i].ok_or_else(|| DatasetError::EmptyValue { row, column: target.into() })?;
        if !v.is_finite() {
            return Err(DatasetError::NotFinite { row, column: target.into(), value: v });
        }
        // A latency is a positive time; beyond 1,000 s per inference it is a unit or parse error.
        // A layer inside a network may take none: identity layers lower to no op at all.
        let in_network = kind_of(i) == Some(LAYER_IN_NETWORK);
        let least_ok = if in_network { v >= 0.0 } else { v > 0.0 };
        if is_latency && !(least_ok && v <= MAX_LATENCY_MS) {
            let shown = if v.abs() >= 1e9 { format!("{v:e}") } else { v.to_string() };
            return Err(DatasetError::Latency { row, column: target.into(), shown });
        }
        let precision = match precision_col.as_ref().and_then(|p| p[i].as_deref()).filter(|p| !p.is_empty()) {
            None => Precision::Fp32,
            Some(p) => p.parse::<Precision>().map_err(|e| DatasetError::Precision { row, why: e.to_string() })?,
        };
        if is_layer(i) {
            ds.layers.push(LayerRow { key: key_of(i, "layer")?, latency_ms: v, precision, source: LayerSource::Alone });
            continue;
        }
        let text = arch.as_ref().and_then(|a| a[i].clone()).ok_or(DatasetError::NoArch { row })?;
        let cell = space_col.as_ref().and_then(|s| s[i].clone()).filter(|s| !s.is_empty());
        if let (Some(cell), Some(given)) = (&cell, default_space) {
            if cell != given {
                return Err(DatasetError::SpaceMismatch { row, cell: cell.clone(), given: given.into() });
            }
        }
        let space_name = cell.or_else(|| default_space.map(str::to_string)).ok_or(DatasetError::NoSpace { row })?;
        if !spaces_by_name.contains_key(&space_name) {
            spaces_by_name.insert(space_name.clone(), spaces::space(&space_name)?);
        }
        let space = &spaces_by_name[&space_name];
        let genome = parse_arch(space.as_ref(), &text).map_err(|source| DatasetError::Arch {
            row,
            text: text.clone(),
            source,
        })?;
        let r = match resolution.as_ref().and_then(|r| r[i]) {
            Some(r) if r >= 1.0 && r.fract() == 0.0 => r as u32,
            Some(value) => return Err(DatasetError::Resolution { row, value }),
            None => space.resolution(&genome),
        };
        let arch_id = format!("{space_name}:{}", space.to_json(&genome));
        if in_network {
            let k = key_of(i, LAYER_IN_NETWORK)?;
            ds.layers.push(LayerRow { key: k, latency_ms: v, precision, source: LayerSource::InNetwork { arch_id } });
            continue;
        }
        let network = space.network_at(&genome, r);
        // One measurement per architecture and resolution (and device and precision): a repeat
        // would weigh that network twice in every fit and sit on both sides of a split.
        let dev = device.as_ref().and_then(|d| d[i].clone());
        if let Some(first) = first_row.insert((arch_id.clone(), r, dev, precision), row) {
            return Err(DatasetError::Repeated { first, row, resolution: r, text });
        }
        ds.networks.push(NetworkRow {
            space: space_name,
            genome,
            arch_id,
            resolution: r,
            value: v,
            network,
            precision,
        });
    }
    Ok(ds)
}

/// The space's JSON encoding, or a bare op string (`k3_e1-skip-…`) as `{"ops": …}`.
pub fn parse_arch(space: &dyn SearchSpace, text: &str) -> Result<Genome, spaces::ArchError> {
    let v: Value = match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => serde_json::json!({ "ops": text }),
    };
    let mut g = space.from_json(&v)?;
    space.canonicalize(&mut g);
    Ok(g)
}
