//! Single-Path NAS's Pixel 1 runtime model (`shared/reference/spaces.md` §3):
//! `R = 19.5999 + Σ_{l=1..20} R_l` over the searchable layers, with the superkernel
//! formula `R_l = d50·(T[l][k5e3] + d100·(T[l][k5e6] − T[l][k5e3]))·(ρ + (1−ρ)·d5)`,
//! `ρ = T[l][k3e6] / T[l][k5e6]`. So k5e3, k5e6 and k3e6 are exact table entries,
//! k3e3 is approximated by T[l][k5e3]·ρ, and skip costs 0.
//!
//! The table is per position (layers 2–4 share one layer shape but have their own
//! numbers), so this predictor reads positions from the layer names the
//! `singlepath` space gives (`layer1` … `layer20`).

use crate::{document, DocumentError, ImportError, LatencyPredictor, PredictError};
use serde::{Deserialize, Serialize};
use spaces::ir::{Network, Op};
use std::collections::BTreeMap;
use std::path::Path;

pub const FAMILY: &str = "spnas";
/// Stem, fixed layers 0 and 21, head, pooling and classifier, as the released code has it.
pub const CONSTANT_MS: f64 = 19.5999;
const SEARCHABLE: usize = 20;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SinglePathPredictor {
    pub source: String,
    pub constant_ms: f64,
    /// `table[l]` = [k3e3, k3e6, k5e3, k5e6] ms of supernet layer l (0 … 21), the file's option order.
    pub table: Vec<[f64; 4]>,
}

impl SinglePathPredictor {
    /// Imports the released `pixel1_runtime_model.json` (`{"layer": {"option": ms}}`).
    pub fn import(path: &Path) -> Result<Self, ImportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read { path: path.into(), source })?;
        let raw: BTreeMap<String, BTreeMap<String, f64>> =
            serde_json::from_str(&text).map_err(|source| ImportError::SpnasJson { path: path.into(), source })?;
        let mut table = vec![[f64::NAN; 4]; SEARCHABLE + 2];
        for (layer, opts) in &raw {
            let l: usize = layer.parse().ok().filter(|&l| l < table.len()).ok_or_else(|| ImportError::SpnasLayer {
                path: path.into(),
                layer: layer.clone(),
                last: SEARCHABLE + 1,
            })?;
            for (opt, &ms) in opts {
                let o: usize = opt.parse().ok().filter(|&o| o < 4).ok_or_else(|| ImportError::SpnasOption {
                    path: path.into(),
                    layer: layer.clone(),
                    option: opt.clone(),
                })?;
                table[l][o] = ms;
            }
        }
        for (l, row) in table.iter().enumerate().skip(1).take(SEARCHABLE) {
            if row.iter().any(|v| !v.is_finite() || *v <= 0.0) {
                return Err(ImportError::SpnasIncomplete { path: path.into(), layer: l });
            }
        }
        Ok(SinglePathPredictor { source: path.display().to_string(), constant_ms: CONSTANT_MS, table })
    }

    /// The formula's R_l for kernel k ∈ {3,5} and expansion e ∈ {3,6} at supernet layer l.
    pub fn layer_ms(&self, l: usize, kernel: u32, expand: u32) -> f64 {
        let [_, k3e6, k5e3, k5e6] = self.table[l];
        let rho = k3e6 / k5e6;
        let d100 = (expand == 6) as u32 as f64;
        let d5 = (kernel == 5) as u32 as f64;
        (k5e3 + d100 * (k5e6 - k5e3)) * (rho + (1.0 - rho) * d5)
    }

    pub fn load(path: &Path) -> Result<Self, DocumentError> {
        document::read(path, FAMILY)
    }
}

impl LatencyPredictor for SinglePathPredictor {
    fn family(&self) -> &str {
        FAMILY
    }
    /// Single-Path NAS's model prices the `singlepath` space's layers only.
    fn spaces_served(&self) -> Option<Vec<String>> {
        Some(vec!["singlepath".into()])
    }
    fn predict_ms(&self, net: &Network) -> Result<f64, PredictError> {
        let mut total = self.constant_ms;
        for layer in &net.layers {
            let Some(l) = layer.name.strip_prefix("layer").and_then(|s| s.parse::<usize>().ok()) else { continue };
            if !(1..=SEARCHABLE).contains(&l) {
                continue; // layers 0 and 21 are inside the constant
            }
            let Op::MbConv(m) = &layer.op else {
                return Err(PredictError::UnknownLayer {
                    layer: layer.name.clone(),
                    why: "not an MBConv; is this a singlepath network?".into(),
                });
            };
            let e = m.mid / layer.input.c.max(1);
            if !matches!((m.kernel, e), (3 | 5, 3 | 6)) || m.mid != e * layer.input.c {
                return Err(PredictError::UnknownLayer {
                    layer: layer.name.clone(),
                    why: format!(
                        "k{} mid {} (input {}) is not one of k3/k5 × e3/e6 of the Pixel 1 table",
                        m.kernel, m.mid, layer.input.c
                    ),
                });
            }
            total += self.layer_ms(l, m.kernel, e);
        }
        Ok(total)
    }
    fn save(&self, path: &Path) -> Result<(), DocumentError> {
        document::write(path, FAMILY, self)
    }
}
