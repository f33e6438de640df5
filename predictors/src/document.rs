//! The on-disk predictor format: one plain JSON object
//! `{"format": "hwnas-predictor", "version": 1, "family": "...", ...family fields}`.
//! No pickles: every number a predictor uses is readable in the file.

use crate::{DocumentError, LatencyPredictor};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

pub const FORMAT: &str = "hwnas-predictor";
pub const VERSION: u64 = 1;

/// Writes `body` (a JSON object of the family's fields) with the envelope in front.
pub fn write<T: Serialize>(path: &Path, family: &str, body: &T) -> Result<(), DocumentError> {
    let mut doc = Map::new();
    doc.insert("format".into(), FORMAT.into());
    doc.insert("version".into(), VERSION.into());
    doc.insert("family".into(), family.into());
    match serde_json::to_value(body).map_err(DocumentError::Serialize)? {
        Value::Object(fields) => doc.extend(fields),
        other => return Err(DocumentError::Body(other)),
    }
    let text = serde_json::to_string_pretty(&Value::Object(doc)).map_err(DocumentError::Serialize)?;
    create_parent(path)?;
    std::fs::write(path, text + "\n").map_err(|source| DocumentError::Write { path: path.into(), source })
}

/// Creates the directory a predictor file goes in (`--out preds/new.json` in a fresh clone).
pub(crate) fn create_parent(path: &Path) -> Result<(), DocumentError> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| DocumentError::CreateDir { dir: dir.into(), source })
        }
        None => Ok(()),
    }
}

/// Adds `field` to a saved document (e.g. how `auto` chose the family); readers ignore it.
pub fn attach(path: &Path, field: &str, value: Value) -> Result<(), DocumentError> {
    let (_, mut doc) = read_any(path)?;
    doc.as_object_mut().ok_or_else(|| DocumentError::NotObject { path: path.into() })?.insert(field.into(), value);
    let text = serde_json::to_string_pretty(&doc).map_err(DocumentError::Serialize)?;
    std::fs::write(path, text + "\n").map_err(|source| DocumentError::Write { path: path.into(), source })
}

/// Reads a document and checks its envelope; returns the family and the whole object.
pub fn read_any(path: &Path) -> Result<(String, Value), DocumentError> {
    let text = std::fs::read_to_string(path).map_err(|source| DocumentError::Read { path: path.into(), source })?;
    let v: Value =
        serde_json::from_str(&text).map_err(|source| DocumentError::NotJson { path: path.into(), source })?;
    let field =
        |field: &'static str| v.get(field).ok_or_else(|| DocumentError::MissingField { path: path.into(), field });
    let format = field("format")?;
    if format.as_str() != Some(FORMAT) {
        return Err(DocumentError::Format { path: path.into(), found: format.clone() });
    }
    let version = field("version")?;
    match version.as_u64() {
        Some(VERSION) => {}
        Some(found) => return Err(DocumentError::Version { path: path.into(), found }),
        None => return Err(DocumentError::VersionType { path: path.into(), found: version.clone() }),
    }
    let family = field("family")?.as_str().ok_or_else(|| DocumentError::FamilyType { path: path.into() })?.to_string();
    Ok((family, v))
}

/// Reads a document of one family into its body type.
pub fn read<T: DeserializeOwned>(path: &Path, family: &str) -> Result<T, DocumentError> {
    let (found, v) = read_any(path)?;
    if found != family {
        return Err(DocumentError::WrongFamily { path: path.into(), found, expected: family.into() });
    }
    serde_json::from_value(v).map_err(|source| DocumentError::Malformed {
        path: path.into(),
        family: family.into(),
        source,
    })
}

/// Loads any latency predictor file, dispatching on its `family`.
/// A file with a `precision` field comes back with it ([`crate::precision`]); one without
/// it prices fp32 models.
pub fn load_predictor(path: &Path) -> Result<Box<dyn LatencyPredictor>, DocumentError> {
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
        _ => return Err(DocumentError::UnknownFamily { path: path.into(), family }),
    };
    Ok(if recorded { crate::precision::with_precision(p, precision) } else { p })
}
