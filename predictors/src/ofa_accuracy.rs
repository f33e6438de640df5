//! OFA's own accuracy predictor (family `ofa-accuracy`): the MLP OFA's tutorial ships as
//! `acc_predictor.pth`, imported once from that PyTorch file and then served like any hwnas
//! accuracy predictor (plain JSON document + safetensors weights, Rust forward of [`Mlp`]).
//!
//! It computes exactly `ofa/tutorial/accuracy_predictor.py`: [`spec2feats`] (128 features),
//! then `Linear(128,400) ReLU Linear(400,400) ReLU Linear(400,400) ReLU Linear(400,1)`; the
//! output is ImageNet top-1 as a fraction. It was trained on sub-networks of OFA-MobileNetV3
//! **w1.2**; the w1.0 space has the same encoding and can be served on request, but the numbers
//! are then still w1.2 accuracies (a ranking proxy only).

use crate::accuracy::AccuracyPredictor;
use crate::document;
use crate::mlp::Mlp;
use crate::torch_file;
use crate::{AccuracyError, DocumentError, ImportError};
use serde::{Deserialize, Serialize};
use spaces::{Genome, SearchSpace};
use std::ops::RangeInclusive;
use std::path::Path;

pub const FAMILY: &str = "ofa-accuracy";
/// The space OFA trained the predictor for.
pub const TRAINED_ON: &str = "ofa-mbv3-w1.2";
/// Spaces it may serve: same genes (ks, e per slot; d per stage; r), hence the same encoding.
pub const SPACES: [&str; 2] = [TRAINED_ON, "ofa-mbv3-w1.0"];
/// Resolutions OFA's one-hot of `(r - 112) // 16` has a bin for.
pub const RESOLUTIONS: RangeInclusive<u32> = 112..=239;
/// OFA's layer widths.
const DIMS: [usize; 5] = [128, 400, 400, 400, 1];
const SLOTS: usize = 20;
const STAGES: usize = 5;
const KS: [u32; 3] = [3, 5, 7];
const EX: [u32; 3] = [3, 4, 6];
const DEPTHS: [u32; 3] = [2, 3, 4];

/// OFA's `spec2feats`: a one-hot of ks over (3, 5, 7) for each of the 20 block slots (60),
/// then a one-hot of e over (3, 4, 6) for each slot (60) — all zero for slots beyond their
/// stage's depth `d` (4 slots per stage) — then a one-hot of the 8 resolution bins
/// `(r - 112) // 16` (8). Values of inactive slots are ignored.
pub fn spec2feats(ks: &[u32], e: &[u32], d: &[u32], r: u32) -> Result<[f32; 128], AccuracyError> {
    if ks.len() != SLOTS || e.len() != SLOTS || d.len() != STAGES {
        return Err(AccuracyError::SpecLengths { ks: ks.len(), e: e.len(), d: d.len() });
    }
    if !RESOLUTIONS.contains(&r) {
        return Err(AccuracyError::Resolution(r));
    }
    let mut x = [0f32; 128];
    for (stage, &depth) in d.iter().enumerate() {
        if !DEPTHS.contains(&depth) {
            return Err(AccuracyError::Depth { stage, depth, choices: DEPTHS.to_vec() });
        }
        for slot in stage * 4..stage * 4 + depth as usize {
            let index = |value: u32, choices: &[u32; 3], gene: &'static str| {
                choices.iter().position(|&c| c == value).ok_or_else(|| AccuracyError::Choice {
                    gene,
                    slot,
                    value,
                    choices: choices.to_vec(),
                })
            };
            x[3 * slot + index(ks[slot], &KS, "ks")?] = 1.0;
            x[60 + 3 * slot + index(e[slot], &EX, "e")?] = 1.0;
        }
    }
    x[120 + ((r - 112) / 16) as usize] = 1.0;
    Ok(x)
}

/// Checks that a space's genome keeps ks, e, d and r where OFA's encoding reads them, so
/// that a space whose genes differ is refused instead of silently mis-encoded.
fn check_layout(space: &dyn SearchSpace) -> Result<(), AccuracyError> {
    let genes = space.genes();
    let expect = |i: usize, name: String, choices: &[u32]| -> Result<(), AccuracyError> {
        let gene =
            genes.get(i).ok_or_else(|| AccuracyError::NoGene { space: space.name().into(), gene: name.clone() })?;
        let labels: Vec<String> = choices.iter().map(u32::to_string).collect();
        if gene.name != name || gene.choices != labels {
            return Err(AccuracyError::Gene {
                space: space.name().into(),
                index: i,
                found: format!("{} {:?}", gene.name, gene.choices),
                needs: format!("{name} {labels:?}"),
            });
        }
        Ok(())
    };
    for s in 0..SLOTS {
        expect(s, format!("ks[{s}]"), &KS)?;
        expect(SLOTS + s, format!("e[{s}]"), &EX)?;
    }
    for s in 0..STAGES {
        expect(2 * SLOTS + s, format!("d[{s}]"), &DEPTHS)?;
    }
    if genes.len() != GENES || genes[2 * SLOTS + STAGES].name != "r" {
        return Err(AccuracyError::NoResolutionGene(space.name().into()));
    }
    Ok(())
}

const GENES: usize = 2 * SLOTS + STAGES + 1;

/// OFA's features of one genome of a space [`check_layout`] accepted.
fn encode_genome(space: &dyn SearchSpace, g: &Genome) -> Result<[f32; 128], AccuracyError> {
    if g.0.len() != GENES {
        return Err(AccuracyError::GenomeLength { found: g.0.len(), space: space.name().into(), expected: GENES });
    }
    let pick = |i: usize, choices: &[u32; 3]| choices.get(g.0[i] as usize).copied().unwrap_or(0);
    let ks: [u32; SLOTS] = std::array::from_fn(|s| pick(s, &KS));
    let e: [u32; SLOTS] = std::array::from_fn(|s| pick(SLOTS + s, &EX));
    let d: [u32; STAGES] = std::array::from_fn(|s| pick(2 * SLOTS + s, &DEPTHS));
    spec2feats(&ks, &e, &d, space.resolution(g))
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct OfaAccDoc {
    /// The space served (genomes of any other are refused).
    space: String,
    /// Always [`TRAINED_ON`]: what the accuracies are of.
    trained_on: String,
    source: String,
    encoding: String,
    /// The safetensors file (`fc0..fc3` as OFA's `0, 2, 4, 6`; zero skip path), relative to this document.
    weights: String,
}

pub struct OfaAccuracyPredictor {
    doc: OfaAccDoc,
    mlp: Mlp,
}

impl OfaAccuracyPredictor {
    /// Reads OFA's `acc_predictor.pth` (the state dict of its `nn.Sequential`: `0.weight`
    /// [400,128], `0.bias`, `2.*`, `4.*`, `6.weight` [1,400], `6.bias`) to serve `space`.
    pub fn import(pth: &Path, space: &str) -> Result<Self, ImportError> {
        if !SPACES.contains(&space) {
            return Err(ImportError::OfaAccuracySpace(space.into()));
        }
        let sd = torch_file::load_state_dict(pth)?;
        let mut layers = Vec::new();
        let mut used = Vec::new();
        for (i, w) in DIMS.windows(2).enumerate() {
            let (din, dout) = (w[0], w[1]);
            let mut get = |name: String, shape: Vec<usize>| -> Result<Vec<f32>, ImportError> {
                let Some(t) = sd.get(&name) else { return Err(ImportError::NoTensor { path: pth.into(), name }) };
                if t.shape != shape {
                    return Err(ImportError::TensorShape {
                        path: pth.into(),
                        name,
                        found: t.shape.clone(),
                        expected: shape,
                    });
                }
                used.push(name);
                Ok(t.to_f32())
            };
            let weight = get(format!("{}.weight", 2 * i), vec![dout, din])?;
            let bias = get(format!("{}.bias", 2 * i), vec![dout])?;
            layers.push((din, dout, weight, bias));
        }
        if let Some(extra) = sd.keys().find(|k| !used.contains(k)) {
            return Err(ImportError::ExtraTensor { path: pth.into(), name: extra.clone() });
        }
        let doc = OfaAccDoc {
            space: space.into(),
            trained_on: TRAINED_ON.into(),
            source: format!("OFA's accuracy predictor, imported from {}", pth.display()),
            encoding: "OFA spec2feats: ks one-hot (20 slots x {3,5,7}), e one-hot (20 x {3,4,6}), zero for slots \
                       beyond the stage depth, then 8 resolution bins (r-112)//16"
                .into(),
            weights: String::new(),
        };
        Ok(OfaAccuracyPredictor { doc, mlp: Mlp::from_layers(layers)? })
    }

    pub fn load(path: &Path) -> Result<Self, DocumentError> {
        let doc: OfaAccDoc = document::read(path, FAMILY)?;
        if !SPACES.contains(&doc.space.as_str()) || doc.trained_on != TRAINED_ON {
            return Err(DocumentError::OfaAccuracy { path: path.into(), space: doc.space, trained_on: doc.trained_on });
        }
        let weights = path.parent().unwrap_or(Path::new(".")).join(&doc.weights);
        let mlp = Mlp::load_weights(&weights, 0.0, 1.0)?;
        if mlp.dims() != DIMS {
            return Err(DocumentError::Widths { path: weights, found: mlp.dims(), expected: DIMS.to_vec() });
        }
        Ok(OfaAccuracyPredictor { doc, mlp })
    }

    /// The space this predictor serves.
    pub fn space(&self) -> &str {
        &self.doc.space
    }

    /// The prediction for an OFA spec as OFA writes it (`ks`, `e` per slot, `d` per stage, `r`).
    pub fn predict_spec(&self, ks: &[u32], e: &[u32], d: &[u32], r: u32) -> Result<f64, AccuracyError> {
        Ok(self.mlp.forward(&spec2feats(ks, e, d, r)?))
    }
}

impl AccuracyPredictor for OfaAccuracyPredictor {
    fn family(&self) -> &str {
        FAMILY
    }
    fn predict(&self, space: &dyn SearchSpace, g: &Genome) -> Result<f64, AccuracyError> {
        Ok(self.predict_batch(space, &[g])?[0])
    }
    fn predict_batch(&self, space: &dyn SearchSpace, gs: &[&Genome]) -> Result<Vec<f64>, AccuracyError> {
        if space.name() != self.doc.space {
            return Err(AccuracyError::Serves { serves: self.doc.space.clone(), space: space.name().into() });
        }
        check_layout(space)?;
        let xs: Vec<[f32; 128]> = gs.iter().map(|g| encode_genome(space, g)).collect::<Result<_, _>>()?;
        Ok(self.mlp.forward_batch(&xs.iter().map(|x| x.as_slice()).collect::<Vec<_>>()))
    }
    fn save(&self, path: &Path) -> Result<(), DocumentError> {
        let mut doc = self.doc.clone();
        doc.weights = self.mlp.save_beside(path)?;
        document::write(path, FAMILY, &doc)
    }
}
