//! The on-disk predictor format: one plain JSON object
//! `{"format": "hwnas-predictor", "version": 1, "family": "...", ...family fields}`.
//! No pickles: every number a predictor uses is readable in the file.

use crate::LatencyPredictor;
use anyhow::{bail, Context, Result};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

pub const FORMAT: &str = "hwnas-predictor";
pub const VERSION: u64 = 1;

/// Writes `body` (a JSON object of the family's fields) with the envelope in front.
pub fn write<T: Serialize>(path: &Path, family: &str, body: &T) -> Result<()> {
    let mut doc = Map::new();
    doc.insert("format".into(), FORMAT.into());
    doc.insert("version".into(), VERSION.into());
    doc.insert("family".into(), family.into());
    match serde_json::to_value(body)? {
        Value::Object(fields) => doc.extend(fields),
        other => bail!("predictor body must be a JSON object, got {other}"),
    }
    let text = serde_json::to_string_pretty(&Value::Object(doc))?;
    create_parent(path)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing predictor {}", path.display()))
}

/// Creates the directory a predictor file goes in (`--out preds/new.json` in a fresh clone).
pub(crate) fn create_parent(path: &Path) -> Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {} for the predictor", dir.display()))
        }
        None => Ok(()),
    }
}

/// Adds `field` to a saved document (e.g. how `auto` chose the family); readers ignore it.
pub fn attach(path: &Path, field: &str, value: Value) -> Result<()> {
    let (_, mut doc) = read_any(path)?;
    doc.as_object_mut().context("predictor document is not an object")?.insert(field.into(), value);
    let text = serde_json::to_string_pretty(&doc)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing predictor {}", path.display()))
}

/// Reads a document and checks its envelope; returns the family and the whole object.
pub fn read_any(path: &Path) -> Result<(String, Value)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading predictor {}", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not a JSON predictor file", path.display()))?;
    let field = |name: &str| v.get(name).with_context(|| format!("{}: missing field `{name}`", path.display()));
    if field("format")?.as_str() != Some(FORMAT) {
        bail!("{}: `format` is {}, expected \"{FORMAT}\"", path.display(), field("format")?);
    }
    let version = field("version")?;
    match version.as_u64() {
        Some(VERSION) => {}
        Some(other) => {
            bail!("{}: predictor version {other}; this build reads version {VERSION} only", path.display())
        }
        None => bail!("{}: `version` must be the number {VERSION}, not {version}", path.display()),
    }
    let family = field("family")?.as_str().context("`family` must be a string")?.to_string();
    Ok((family, v))
}

/// Reads a document of one family into its body type.
pub fn read<T: DeserializeOwned>(path: &Path, family: &str) -> Result<T> {
    let (found, v) = read_any(path)?;
    if found != family {
        bail!("{}: a `{found}` predictor, expected `{family}`", path.display());
    }
    serde_json::from_value(v).with_context(|| format!("{}: malformed `{family}` predictor", path.display()))
}

/// Loads any latency predictor file, dispatching on its `family`.
/// A file with a `precision` field comes back with it ([`crate::precision`]); one without
/// it prices fp32 models.
pub fn load_predictor(path: &Path) -> Result<Box<dyn LatencyPredictor>> {
    let (family, doc) = read_any(path)?;
    let recorded = doc.get(crate::precision::FIELD).is_some();
    let precision = crate::precision::of_document(path, &doc)?;
    let p: Box<dyn LatencyPredictor> = match family.as_str() {
        crate::lut::FAMILY => Box::new(crate::lut::LutPredictor::load(path)?),
        crate::flops::FAMILY => Box::new(crate::flops::FlopsPredictor::load(path)?),
        crate::kernel::FAMILY => Box::new(crate::kernel::KernelPredictor::load(path)?),
        crate::latency_mlp::FAMILY => Box::new(crate::latency_mlp::MlpPredictor::load(path)?),
        crate::spnas::FAMILY => Box::new(crate::spnas::SinglePathPredictor::load(path)?),
        crate::ofa_yaml::FAMILY => Box::new(crate::ofa_yaml::OfaLut::load(path)?),
        other => {
            bail!("{}: unknown predictor family `{other}` (lut, kernel, mlp, flops, spnas, ofa-lut)", path.display())
        }
    };
    Ok(if recorded { crate::precision::with_precision(p, precision) } else { p })
}
