//! Strict readers for architecture JSON: every error names the field.

use crate::ArchError;
use serde_json::{Map, Value};

pub fn object<'a>(v: &'a Value, allowed: &[&str]) -> Result<&'a Map<String, Value>, ArchError> {
    let m = v.as_object().ok_or_else(|| ArchError::Other("architecture must be a JSON object".into()))?;
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(ArchError::field(k, format!("unknown field (expected one of: {})", allowed.join(", "))));
        }
    }
    Ok(m)
}

pub fn required<'a>(m: &'a Map<String, Value>, field: &str) -> Result<&'a Value, ArchError> {
    m.get(field).ok_or_else(|| ArchError::field(field, "missing"))
}

pub fn array<'a>(v: &'a Value, field: &str, len: usize) -> Result<&'a [Value], ArchError> {
    let a = v.as_array().ok_or_else(|| ArchError::field(field, "expected an array"))?;
    if a.len() != len {
        return Err(ArchError::field(field, format!("expected {len} entries, got {}", a.len())));
    }
    Ok(a)
}

pub fn uint(v: &Value, field: &str) -> Result<u64, ArchError> {
    v.as_u64().ok_or_else(|| ArchError::field(field, format!("expected a non-negative integer, got {v}")))
}

pub fn number(v: &Value, field: &str) -> Result<f64, ArchError> {
    v.as_f64().ok_or_else(|| ArchError::field(field, format!("expected a number, got {v}")))
}

pub fn string<'a>(v: &'a Value, field: &str) -> Result<&'a str, ArchError> {
    v.as_str().ok_or_else(|| ArchError::field(field, format!("expected a string, got {v}")))
}

/// Index of `value` among `choices`, or an error listing them.
pub fn choice<T: PartialEq + std::fmt::Display>(value: T, choices: &[T], field: &str) -> Result<u8, ArchError> {
    choices.iter().position(|c| *c == value).map(|i| i as u8).ok_or_else(|| {
        let list: Vec<String> = choices.iter().map(|c| c.to_string()).collect();
        ArchError::field(field, format!("{value} is not one of {}", list.join(", ")))
    })
}
