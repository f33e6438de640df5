//! Importer for OFA / ProxylessNAS latency lookup tables (`{R}_lookup_table.yaml`,
//! `shared/reference/latency.md` §3): maps each IR layer of an OFA space onto the
//! table's key and builds a [`LutPredictor`] keyed on `Layer::key()`.
//!
//! The files are a flat two-level YAML map (`key: {count, mean, std|var}`), block or flow
//! style. Keys contain colons (`input:224x224x3`), which YAML allows in plain scalars; a
//! 40-line reader for exactly this shape is smaller than a YAML dependency.

use crate::lut::{Coverage, Entry, LutPredictor};
use anyhow::{bail, Context, Result};
use spaces::ir::{Layer, Op};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One row of the YAML table.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stat {
    pub count: f64,
    pub mean: f64,
}

/// Parses `key:\n  count: …\n  mean: …` (or `key: {count: …, mean: …}`) into key → stat.
pub fn parse(text: &str) -> Result<BTreeMap<String, Stat>> {
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
                let mut stat = Stat::default();
                for field in body.split(',') {
                    set_field(&mut stat, field, no + 1)?;
                }
                out.insert(key, stat);
                current = None;
            } else if let Some(key) = line.strip_suffix(':') {
                let key = unquote(key);
                out.insert(key.clone(), Stat::default());
                current = Some(key);
            } else {
                bail!("line {}: expected `key:` or `key: {{…}}`, got `{line}`", no + 1);
            }
        } else {
            let key = current.as_ref().with_context(|| format!("line {}: indented field outside an entry", no + 1))?;
            set_field(out.get_mut(key).unwrap(), line.trim(), no + 1)?;
        }
    }
    for (k, s) in &out {
        if !s.mean.is_finite() || s.mean < 0.0 {
            bail!("entry `{k}` has no valid `mean`");
        }
    }
    Ok(out)
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches('\'').trim_matches('"').to_string()
}

fn set_field(stat: &mut Stat, field: &str, line: usize) -> Result<()> {
    let (name, value) = field.split_once(':').with_context(|| format!("line {line}: expected `name: value`"))?;
    let v: f64 = value.trim().parse().with_context(|| format!("line {line}: `{}` is not a number", value.trim()))?;
    match name.trim() {
        "count" => stat.count = v,
        "mean" => stat.mean = v,
        "std" | "var" => {}
        other => bail!("line {line}: unknown field `{other}` (count, mean, std, var)"),
    }
    Ok(())
}

/// The OFA table key of one IR layer of an OFA space (`mbv3`: OFA-MobileNetV3, else ProxylessNAS),
/// or `None` for layers the table folds into another entry (ProxylessNAS's classifier is inside `Logits`).
pub fn ofa_key(l: &Layer, mbv3: bool) -> Result<Option<String>> {
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
        _ => bail!("layer {} ({}) has no OFA lookup-table counterpart", l.name, l.key()),
    }))
}

/// `{R}_lookup_table.yaml` files: `path` itself, or every such file in a directory.
fn table_files(path: &Path, resolution: Option<u32>) -> Result<Vec<(u32, PathBuf)>> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
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
            None => name.split('_').next().and_then(|s| s.parse().ok()).with_context(|| {
                format!(
                    "{}: resolution not in the file name (`{{R}}_lookup_table.yaml`); pass --resolution",
                    f.display()
                )
            })?,
        };
        out.push((r, f));
    }
    if out.is_empty() {
        bail!("{}: no `*_lookup_table.yaml` files", path.display());
    }
    Ok(out)
}

/// Imports the table(s) at `path` for `space` (an OFA space). Every layer the space can
/// contain at each table's resolution must have an entry. A layer that appears at several
/// resolutions with the same IR key (the classifier) gets the mean of its entries.
pub fn import(path: &Path, space_name: &str, resolution: Option<u32>) -> Result<LutPredictor> {
    let mbv3 = match space_name {
        s if s.starts_with("ofa-mbv3") => true,
        s if s.starts_with("ofa-proxyless") => false,
        _ => bail!("OFA tables describe the ofa-mbv3-* and ofa-proxyless-* spaces, not `{space_name}`"),
    };
    let space = spaces::space(space_name)?;
    let mut sums: BTreeMap<String, (f64, f64, Layer)> = BTreeMap::new();
    let mut resolutions = Vec::new();
    for (r, file) in table_files(path, resolution)? {
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let table = parse(&text).with_context(|| format!("parsing {}", file.display()))?;
        resolutions.push(r);
        for l in space.layer_table_at(r) {
            let ms = match ofa_key(&l, mbv3)? {
                None => 0.0,
                Some(k) => {
                    let s = table
                        .get(&k)
                        .with_context(|| format!("{}: no entry `{k}` (layer {})", file.display(), l.name))?;
                    s.mean
                }
            };
            let e = sums.entry(l.key()).or_insert((0.0, 0.0, l));
            e.0 += ms;
            e.1 += 1.0;
        }
    }
    let entries = sums
        .into_iter()
        .map(|(key, (sum, n, l))| Entry {
            key,
            ms: sum / n,
            macs: Some(l.macs()),
            memory_bytes: Some(l.memory_bytes()),
        })
        .collect();
    resolutions.sort_unstable();
    let source = format!("OFA lookup table {} for {space_name}", path.display());
    LutPredictor::from_entries(source, entries, vec![Coverage { space: space_name.into(), resolutions }])
}
