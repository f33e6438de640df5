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

use anyhow::{bail, Context, Result};
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

/// The `kind` of a layer-in-network row.
pub const LAYER_IN_NETWORK: &str = "layer-in-network";

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
    pub fn precision(&self) -> Result<Precision> {
        match self.precisions().as_slice() {
            [] => Ok(Precision::Fp32),
            [one] => Ok(*one),
            many => bail!(
                "{} mixes precisions {}: fit one precision at a time (e.g. `hwnas fit --precision {}`)",
                self.described(),
                list(many),
                many[0]
            ),
        }
    }

    /// Keeps the rows measured in `precision`; refused when there are none, naming the ones
    /// there are.
    pub fn select_precision(&mut self, precision: Precision) -> Result<()> {
        let there = self.precisions();
        if !there.contains(&precision) {
            bail!("{} has no rows in precision {precision} (its rows are {})", self.described(), list(&there));
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
        Dataset { layers: self.layers.iter().filter(|l| keep(l)).cloned().collect(), ..self.clone() }
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

fn list(p: &[Precision]) -> String {
    p.iter().map(Precision::to_string).collect::<Vec<_>>().join(", ")
}

/// The largest latency a row may have: 1,000 s per inference.
pub const MAX_LATENCY_MS: f64 = 1e6;

/// Reads `path` (`.csv` or `.parquet`). `space` is used where the file has no `space`
/// column (or an empty cell); `target` names the value column (`latency_ms`, `accuracy`, …).
pub fn load(path: &Path, space: Option<&str>, target: &str) -> Result<Dataset> {
    let df = read_frame(path)?;
    let mut ds = from_frame(&df, space, target).with_context(|| format!("reading dataset {}", path.display()))?;
    ds.source = path.display().to_string();
    Ok(ds)
}

fn read_frame(path: &Path) -> Result<DataFrame> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    Ok(match ext.as_str() {
        "csv" => CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .with_context(|| format!("opening {}", path.display()))?
            .finish()
            .with_context(|| format!("parsing CSV {}", path.display()))?,
        "parquet" | "pq" => {
            let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            ParquetReader::new(f).finish().with_context(|| format!("parsing Parquet {}", path.display()))?
        }
        _ => bail!("{}: unknown dataset format (expected .csv or .parquet)", path.display()),
    })
}

fn strings(df: &DataFrame, name: &str) -> Result<Option<Vec<Option<String>>>> {
    let Ok(c) = df.column(name) else { return Ok(None) };
    let c = c.cast(&DataType::String).with_context(|| format!("column `{name}` is not text"))?;
    Ok(Some(c.str()?.iter().map(|s| s.map(str::to_string)).collect()))
}

fn floats(df: &DataFrame, name: &str) -> Result<Option<Vec<Option<f64>>>> {
    let Ok(c) = df.column(name) else { return Ok(None) };
    let c = c.cast(&DataType::Float64).with_context(|| format!("column `{name}` is not numeric"))?;
    Ok(Some(c.f64()?.iter().collect()))
}

fn from_frame(df: &DataFrame, default_space: Option<&str>, target: &str) -> Result<Dataset> {
    let n = df.height();
    let value = floats(df, target)?.with_context(|| {
        format!(
            "no `{target}` column (columns: {})",
            df.get_column_names().iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
        )
    })?;
    let kind = strings(df, "kind")?;
    let key = strings(df, "key")?;
    let arch = strings(df, "arch")?;
    let space_col = strings(df, "space")?;
    let device = strings(df, "device")?;
    let resolution = floats(df, "resolution")?;
    let precision_col = strings(df, "precision")?;
    let columns = || df.get_column_names().iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ");
    let kind_of = |i: usize| kind.as_ref().and_then(|k| k[i].as_deref());
    let is_layer = |i: usize| kind_of(i) == Some("layer");
    if arch.is_none() && (0..n).any(|i| !is_layer(i)) {
        bail!("no `arch` column for the network rows (columns: {})", columns());
    }
    let is_latency = target == "latency_ms";
    let mut spaces_by_name: BTreeMap<String, Box<dyn SearchSpace>> = BTreeMap::new();
    let mut first_row: BTreeMap<(String, u32, Option<String>, Precision), usize> = BTreeMap::new();
    let mut ds = Dataset::default();
    for i in 0..n {
        let row = i + 1;
        let v = value[i].with_context(|| format!("row {row}: empty `{target}`"))?;
        if !v.is_finite() {
            bail!("row {row}: `{target}` is {v}");
        }
        // A latency is a positive time; beyond 1,000 s per inference it is a unit or parse error.
        // A layer inside a network may take none: identity layers lower to no op at all.
        let in_network = kind_of(i) == Some(LAYER_IN_NETWORK);
        let least_ok = if in_network { v >= 0.0 } else { v > 0.0 };
        if is_latency && !(least_ok && v <= MAX_LATENCY_MS) {
            let shown = if v.abs() >= 1e9 { format!("{v:e}") } else { v.to_string() };
            bail!("row {row}: `{target}` is {shown}; a measured latency is positive and at most {MAX_LATENCY_MS} ms");
        }
        let precision = match precision_col.as_ref().and_then(|p| p[i].as_deref()).filter(|p| !p.is_empty()) {
            None => Precision::Fp32,
            Some(p) => p.parse::<Precision>().map_err(|e| anyhow::anyhow!("row {row}: `precision`: {e}"))?,
        };
        let kind_i = kind.as_ref().and_then(|k| k[i].clone()).unwrap_or_default();
        if kind_i == "layer" {
            let k = key
                .as_ref()
                .and_then(|k| k[i].clone())
                .with_context(|| format!("row {row}: layer row without `key`"))?;
            ds.layers.push(LayerRow { key: k, latency_ms: v, precision, source: LayerSource::Alone });
            continue;
        }
        let text = arch.as_ref().and_then(|a| a[i].clone()).with_context(|| format!("row {row}: no `arch`"))?;
        let cell = space_col.as_ref().and_then(|s| s[i].clone()).filter(|s| !s.is_empty());
        if let (Some(cell), Some(given)) = (&cell, default_space) {
            if cell != given {
                bail!("row {row}: `space` is `{cell}` but the space given is `{given}` (pass --space {cell}, or none)");
            }
        }
        let space_name = cell
            .or_else(|| default_space.map(str::to_string))
            .with_context(|| format!("row {row}: no `space` column or cell, and no --space given"))?;
        if !spaces_by_name.contains_key(&space_name) {
            spaces_by_name.insert(space_name.clone(), spaces::space(&space_name)?);
        }
        let space = &spaces_by_name[&space_name];
        let genome = parse_arch(space.as_ref(), &text).with_context(|| format!("row {row}: arch `{text}`"))?;
        let r = match resolution.as_ref().and_then(|r| r[i]) {
            Some(r) if r >= 1.0 && r.fract() == 0.0 => r as u32,
            Some(r) => bail!("row {row}: resolution {r} is not a positive integer"),
            None => space.resolution(&genome),
        };
        let arch_id = format!("{space_name}:{}", space.to_json(&genome));
        if in_network {
            let k = key
                .as_ref()
                .and_then(|k| k[i].clone())
                .with_context(|| format!("row {row}: {LAYER_IN_NETWORK} row without `key`"))?;
            ds.layers.push(LayerRow { key: k, latency_ms: v, precision, source: LayerSource::InNetwork { arch_id } });
            continue;
        }
        let network = space.network_at(&genome, r);
        // One measurement per architecture and resolution (and device and precision): a repeat
        // would weigh that network twice in every fit and sit on both sides of a split.
        let dev = device.as_ref().and_then(|d| d[i].clone());
        if let Some(first) = first_row.insert((arch_id.clone(), r, dev, precision), row) {
            bail!(
                "rows {first} and {row} measure the same architecture at resolution {r} (`{text}`): \
                 keep one measurement per architecture (average repeats before fitting)"
            );
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
pub fn parse_arch(space: &dyn SearchSpace, text: &str) -> Result<Genome> {
    let v: Value = match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => serde_json::json!({ "ops": text }),
    };
    let mut g = space.from_json(&v)?;
    space.canonicalize(&mut g);
    Ok(g)
}
