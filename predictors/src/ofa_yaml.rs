//! Importer for OFA / ProxylessNAS latency lookup tables (`{R}_lookup_table.yaml`,
//! `shared/reference/latency.md` §3): maps each IR layer of an OFA space onto the
//! table's key and builds an [`OfaLut`]: one [`LutPredictor`] keyed on `Layer::key()` per resolution.
//!
//! The files are a flat two-level YAML map (`key: {count, mean, std|var}`), block or flow
//! style. Keys contain colons (`input:224x224x3`), which YAML allows in plain scalars; a
//! 40-line reader for exactly this shape is smaller than a YAML dependency.

use crate::additive::PerLayer;
use crate::lut::{Coverage, Entry, LutPredictor};
use crate::{document, DocumentError, ImportError, LatencyPredictor, PredictError, TableError};
use serde::{Deserialize, Serialize};
use spaces::ir::{Layer, Network, Op};
use spaces::{OfaBase, SpaceFamily};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One row of the YAML table.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stat {
    pub count: f64,
    pub mean: f64,
}

/// An entry before its fields are read: a missing `mean` (a truncated file) stays NaN and is refused.
const UNSET: Stat = Stat { count: 0.0, mean: f64::NAN };

/// Parses `key:\n  count: …\n  mean: …` (or `key: {count: …, mean: …}`) into key → stat.
pub fn parse(text: &str) -> Result<BTreeMap<String, Stat>, ImportError> {
    let mut out: BTreeMap<String, Stat> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (no, raw) in text.lines().enumerate() {
        let line = raw.split(" #").next().unwrap_or("").trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') || line == "---" {
            continue;
        }
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if !indented {
            if let Some(i) = line.find(": {") {
                let key = unquote(&line[..i]);
                let body = line[i + 3..].trim_end_matches('}');
                let mut stat = UNSET;
                for field in body.split(',') {
                    set_field(&mut stat, field, no + 1)?;
                }
                out.insert(key, stat);
                current = None;
            } else if let Some(key) = line.strip_suffix(':') {
                let key = unquote(key);
                out.insert(key.clone(), UNSET);
                current = Some(key);
            } else {
                return Err(ImportError::YamlLine { line: no + 1, text: line.into() });
            }
        } else {
            let key = current.as_ref().ok_or(ImportError::YamlOrphan(no + 1))?;
            set_field(out.get_mut(key).unwrap(), line.trim(), no + 1)?;
        }
    }
    for (k, s) in &out {
        if !s.mean.is_finite() || s.mean < 0.0 {
            return Err(ImportError::NoMean(k.clone()));
        }
    }
    Ok(out)
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches('\'').trim_matches('"').to_string()
}

fn set_field(stat: &mut Stat, field: &str, line: usize) -> Result<(), ImportError> {
    let (name, value) = field.split_once(':').ok_or(ImportError::YamlField(line))?;
    let v: f64 =
        value.trim().parse().map_err(|source| ImportError::YamlNumber { line, text: value.trim().into(), source })?;
    match name.trim() {
        "count" => stat.count = v,
        "mean" => stat.mean = v,
        "std" | "var" => {}
        other => return Err(ImportError::YamlUnknownField { line, name: other.into() }),
    }
    Ok(())
}

/// The OFA table key of one IR layer of an OFA space (`mbv3`: OFA-MobileNetV3, else ProxylessNAS),
/// or `None` for layers the table folds into another entry (ProxylessNAS's classifier is inside `Logits`).
pub fn ofa_key(l: &Layer, mbv3: bool) -> Result<Option<String>, ImportError> {
    let (i, o) = (l.input, l.output);
    Ok(Some(match (&l.op, l.name.as_str()) {
        (Op::Conv(_), "stem") => format!("Conv-input:{i}-output:{o}"),
        (Op::MbConv(m), _) => {
            let skip = (m.shortcut != spaces::ir::Shortcut::None) as u8;
            if mbv3 {
                let hs = (m.act == spaces::ir::Act::HSwish) as u8;
                let se = m.se.is_some() as u8;
                format!(
                    "expanded_conv-input:{i}-output:{o}-expand:{}-kernel:{}-stride:{}-idskip:{skip}-se:{se}-hs:{hs}",
                    m.mid, m.kernel, m.stride
                )
            } else {
                format!(
                    "expanded_conv-input:{i}-output:{o}-expand:{}-kernel:{}-stride:{}-idskip:{skip}",
                    m.mid / i.c,
                    m.kernel,
                    m.stride
                )
            }
        }
        (Op::Conv(_), "final_expand") => format!("Conv_1-input:{i}-output:{o}"),
        (Op::Conv(_), "feature_mix") if mbv3 => format!("Conv_2-input:{i}-output:{o}"),
        (Op::Conv(_), "feature_mix") => format!("Conv_1-input:{i}-output:{o}"),
        (Op::GlobalAvgPool, _) if mbv3 => format!("AvgPool2D-input:{i}-output:{o}"),
        // ProxylessNAS's `Logits` covers pooling and the FC: it is keyed at the pool (input
        // 7x7xC at 224) with OFA's 1000 classes, and the classifier itself costs nothing extra.
        (Op::GlobalAvgPool, _) => format!("Logits-input:{i}-output:1000"),
        (Op::Linear(_), _) if mbv3 => format!("Logits-input:{i}-output:{}", o.c),
        (Op::Linear(_), _) => return Ok(None),
        (Op::Dropout { .. }, _) => return Ok(None),
        _ => return Err(ImportError::NoCounterpart { layer: l.name.clone(), key: l.key() }),
    }))
}

/// OFA-MobileNetV3 block keys carry `-se:` and `-hs:`; ProxylessNAS's do not (and give the
/// expansion as a ratio). A table of the other family is refused by name rather than by its
/// first missing key.
fn check_family(table: &BTreeMap<String, Stat>, mbv3: bool, space_name: &str) -> Result<(), ImportError> {
    let blocks: Vec<&String> = table.keys().filter(|k| k.starts_with("expanded_conv-")).collect();
    let Some(first) = blocks.first() else { return Err(ImportError::NotOfaTable) };
    let table_mbv3 = blocks.iter().all(|k| k.contains("-se:") && k.contains("-hs:"));
    let table_proxyless = blocks.iter().all(|k| !k.contains("-se:") && !k.contains("-hs:"));
    let family = |m: bool| if m { "OFA-MobileNetV3" } else { "ProxylessNAS" };
    match (table_mbv3, table_proxyless) {
        (true, false) | (false, true) if table_mbv3 == mbv3 => Ok(()),
        (true, false) | (false, true) => Err(ImportError::OtherFamily {
            table: family(table_mbv3),
            first: first.to_string(),
            space: space_name.into(),
            family: family(mbv3),
        }),
        _ => Err(ImportError::MixedFamilies),
    }
}

/// `{R}_lookup_table.yaml` files: `path` itself, or every such file in a directory.
fn table_files(path: &Path, resolution: Option<u32>) -> Result<Vec<(u32, PathBuf)>, ImportError> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|source| ImportError::List { path: path.into(), source })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.retain(|p| p.to_string_lossy().ends_with("_lookup_table.yaml"));
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = Vec::new();
    for f in files {
        let name = f.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let r = match resolution {
            Some(r) => r,
            None => name
                .split('_')
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| ImportError::NoResolution { path: f.clone() })?,
        };
        out.push((r, f));
    }
    if out.is_empty() {
        return Err(ImportError::NoTables { path: path.into() });
    }
    Ok(out)
}

pub const FAMILY: &str = "ofa-lut";

/// One resolution's table: entries keyed on `Layer::key()`, the means of OFA's file for that resolution.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct ResolutionTable {
    resolution: u32,
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Doc {
    source: String,
    space: String,
    tables: Vec<ResolutionTable>,
}

/// OFA's lookup tables as published: one table per input resolution, a network priced by
/// the table of its own resolution (the plain sum of its layers' means, as OFA sums them).
///
/// One table per resolution rather than one table for all: the same IR layer has its own
/// measurement in each file (the feature mix and classifier at every resolution, the 7x7
/// stage-5 blocks at both 208 and 224), so a table keyed on the layer alone could only
/// average them. Networks at resolutions without a table are refused, naming those covered.
pub struct OfaLut {
    doc: Doc,
    luts: Vec<(u32, LutPredictor)>,
}

impl OfaLut {
    fn from_doc(doc: Doc) -> Result<Self, TableError> {
        if !spaces::is_family(&doc.space, spaces::ofa) {
            return Err(TableError::NotOfaSpace(doc.space));
        }
        let mut luts: Vec<(u32, LutPredictor)> = Vec::new();
        for t in &doc.tables {
            if luts.iter().any(|(r, _)| *r == t.resolution) {
                return Err(TableError::TwoTables(t.resolution));
            }
            let coverage = vec![Coverage { space: doc.space.clone(), resolutions: vec![t.resolution] }];
            let source = format!("{} at {}", doc.source, t.resolution);
            luts.push((t.resolution, LutPredictor::from_entries(source, t.entries.clone(), coverage)?));
        }
        if luts.is_empty() {
            return Err(TableError::NoResolution);
        }
        luts.sort_by_key(|(r, _)| *r);
        Ok(OfaLut { doc, luts })
    }

    pub fn load(path: &Path) -> Result<Self, DocumentError> {
        Self::from_doc(document::read(path, FAMILY)?)
            .map_err(|source| DocumentError::InvalidTable { path: path.into(), source })
    }

    pub fn source(&self) -> &str {
        &self.doc.source
    }
    /// The space the tables describe.
    pub fn space(&self) -> &str {
        &self.doc.space
    }
    /// The resolutions with a table, ascending.
    pub fn resolutions(&self) -> Vec<u32> {
        self.luts.iter().map(|(r, _)| *r).collect()
    }
    /// Entries over all resolutions.
    pub fn entry_count(&self) -> usize {
        self.doc.tables.iter().map(|t| t.entries.len()).sum()
    }
    /// The table of resolution `r`.
    pub fn table(&self, r: u32) -> Option<&LutPredictor> {
        self.luts.iter().find(|(x, _)| *x == r).map(|(_, t)| t)
    }
}

impl LatencyPredictor for OfaLut {
    fn family(&self) -> &str {
        FAMILY
    }
    fn predict_ms(&self, net: &Network) -> Result<f64, PredictError> {
        let r = net.resolution();
        match self.table(r) {
            Some(t) => t.predict_ms(net),
            None => Err(PredictError::UncoveredResolution {
                source_name: self.doc.source.clone(),
                resolution: r,
                covered: self.resolutions(),
            }),
        }
    }
    fn save(&self, path: &Path) -> Result<(), DocumentError> {
        document::write(path, FAMILY, &self.doc)
    }
    fn per_layer_at(&self, resolution: u32) -> Option<&dyn PerLayer> {
        self.table(resolution).map(|t| t as &dyn PerLayer)
    }
    fn spaces_served(&self) -> Option<Vec<String>> {
        Some(vec![self.doc.space.clone()])
    }
    fn resolutions_covered(&self, space: &str) -> Option<Vec<u32>> {
        // Another space's members have no table at all: nothing is covered.
        Some(if space == self.doc.space { self.resolutions() } else { Vec::new() })
    }
}

/// Imports the table(s) at `path` for `space` (an OFA space): one table per resolution, in
/// which every layer the space can contain at that resolution must have an entry.
pub fn import(path: &Path, space_name: &str, resolution: Option<u32>) -> Result<OfaLut, ImportError> {
    let mbv3 = match spaces::family_of(space_name) {
        Ok(SpaceFamily::Ofa(OfaBase::MobileNetV3)) => true,
        Ok(SpaceFamily::Ofa(OfaBase::ProxylessNas)) => false,
        _ => return Err(ImportError::NotOfaSpace(space_name.into())),
    };
    let space = spaces::space(space_name)?;
    let mut tables = Vec::new();
    for (r, file) in table_files(path, resolution)? {
        let text = std::fs::read_to_string(&file).map_err(|source| ImportError::Read { path: file.clone(), source })?;
        let table = parse(&text).map_err(|e| ImportError::Parse { path: file.clone(), source: Box::new(e) })?;
        check_family(&table, mbv3, space_name)
            .map_err(|e| ImportError::In { path: file.clone(), source: Box::new(e) })?;
        let mut entries = Vec::new();
        for l in space.layer_table_at(r) {
            let ms = match ofa_key(&l, mbv3)? {
                None => 0.0,
                Some(key) => match table.get(&key) {
                    Some(s) => s.mean,
                    None => return Err(ImportError::NoEntry { path: file.clone(), key, layer: l.name.clone() }),
                },
            };
            entries.push(Entry { key: l.key(), ms, macs: Some(l.macs()), memory_bytes: Some(l.memory_bytes()) });
        }
        tables.push(ResolutionTable { resolution: r, entries });
    }
    let source = format!("OFA lookup table {} for {space_name}", path.display());
    Ok(OfaLut::from_doc(Doc { source, space: space_name.into(), tables })?)
}
