//! Accuracy from a trained weight-sharing supernet (the `nn` module's checkpoints): each
//! candidate is extracted as a stand-alone sub-network with the supernet's weights, its BN
//! statistics are re-estimated on training batches (OFA's practice: a sub-network's
//! activation statistics differ from the supernet's), and top-1 is measured on the
//! validation split. One candidate at a time: libtorch already uses every core per forward.
//! The supernet is an `hwnas train` checkpoint directory or an OFA `.pth` supernet checkpoint
//! ([`crate::nn::supernet::ofa_checkpoint`]).

use super::AccuracySource;
use super::ObjectiveError;
use crate::nn::data::{Cifar, DataSource, ImageFolder, Split, Synthetic};
use crate::nn::net::Net;
use crate::nn::supernet::ofa_checkpoint::{self, OfaCheckpoint};
use crate::nn::train::{try_evaluate, try_recalibrate_bn, Trainer};
use crate::nn::NnError;
use serde::{Deserialize, Serialize};
use spaces::ir::Network;
use spaces::{Genome, SearchSpace};
use std::path::Path;
use std::sync::Mutex;
use tch::nn::{ModuleT, VarStore};
use tch::Device;

/// How to evaluate sub-networks of a supernet checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupernetEval {
    /// `cifar10:DIR`, `cifar100:DIR`, `imagefolder:DIR` (train/ and val/), or `synthetic:N:CLASSES`.
    pub data: String,
    /// Training batches for BN re-calibration.
    #[serde(default = "default_calib")]
    pub calib_batches: usize,
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Validation examples per candidate (all when unset).
    #[serde(default)]
    pub max_examples: Option<usize>,
}

impl SupernetEval {
    /// Evaluation on `data` with the defaults: BN re-calibration on 10 training batches of 64,
    /// `max_examples` validation examples (all when unset).
    pub fn new(data: &str, max_examples: Option<usize>) -> SupernetEval {
        SupernetEval { data: data.into(), calib_batches: default_calib(), batch: default_batch(), max_examples }
    }
}

fn default_calib() -> usize {
    10
}
fn default_batch() -> usize {
    64
}

/// A data source by its spec string (`cifar10:DIR`, `cifar100:DIR`, `imagefolder:DIR`,
/// `synthetic:N:CLASSES`), as jobs and `hwnas export --calibration-data` name them.
pub fn load_data(spec: &str, split: Split) -> Result<Box<dyn DataSource>, NnError> {
    let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
    Ok(match kind {
        "cifar10" => Box::new(Cifar::load(Path::new(rest), 10, split)?),
        "cifar100" => Box::new(Cifar::load(Path::new(rest), 100, split)?),
        "imagefolder" => Box::new(ImageFolder::load(Path::new(rest), split)?),
        "synthetic" => {
            let bad = || NnError::SyntheticSpec(spec.into());
            let (n, c) = rest.split_once(':').ok_or_else(bad)?;
            let (n, c): (usize, u32) = (n.parse().map_err(|_| bad())?, c.parse().map_err(|_| bad())?);
            // Validation: the same class patterns, unseen examples.
            let offset = if split == Split::Train { 0 } else { n };
            Box::new(Synthetic::new(n, c, 0).with_offset(offset))
        }
        _ => return Err(NnError::UnknownData(spec.into())),
    })
}

struct Loaded {
    net: Net,
    train: Box<dyn DataSource>,
    val: Box<dyn DataSource>,
}

pub struct SupernetAccuracy {
    checkpoint: String,
    eval: SupernetEval,
    device: Device,
    inner: Mutex<Loaded>,
}

impl SupernetAccuracy {
    /// Loads the latest checkpoint in `dir` (or the OFA checkpoint file `dir`); its supernet
    /// must be of `space`.
    pub fn load(dir: &Path, eval: SupernetEval, space: &dyn SearchSpace) -> Result<Self, ObjectiveError> {
        let device = crate::nn::default_device();
        let net = if ofa_checkpoint::is_torch_file(dir) {
            Net::Ofa(OfaCheckpoint::read(dir, Some(space.name()))?.supernet(device)?.1)
        } else {
            let trainer = Trainer::resume(dir, device)
                .map_err(|source| ObjectiveError::LoadSupernet { dir: dir.into(), source: Box::new(source) })?;
            if matches!(trainer.net, Net::Fixed(_)) {
                return Err(ObjectiveError::FixedNetwork { dir: dir.into() });
            }
            if trainer.spec.space() != space.name() {
                return Err(ObjectiveError::OtherSpace {
                    dir: dir.into(),
                    found: trainer.spec.space().into(),
                    space: space.name().into(),
                });
            }
            trainer.net
        };
        let (train, val) = (load_data(&eval.data, Split::Train)?, load_data(&eval.data, Split::Val)?);
        let inner = Mutex::new(Loaded { net, train, val });
        Ok(SupernetAccuracy { checkpoint: dir.display().to_string(), eval, device, inner })
    }
}

impl AccuracySource for SupernetAccuracy {
    fn kind(&self) -> &str {
        "supernet"
    }
    fn describe(&self) -> String {
        format!(
            "top-1 of sub-networks of supernet {} on {} after BN re-calibration on {} batches",
            self.checkpoint, self.eval.data, self.eval.calib_batches
        )
    }
    fn accuracy(&self, space: &dyn SearchSpace, genome: &Genome, _net: &Network) -> Result<f64, ObjectiveError> {
        let guard = self.inner.lock().map_err(|_| ObjectiveError::Poisoned("supernet evaluator"))?;
        let Loaded { net, train, val } = &*guard;
        let r = space.resolution(genome);
        let vs = VarStore::new(self.device);
        let mut model = match net {
            Net::Ofa(s) => s.extract(&vs.root(), genome, r),
            Net::FbNet(s) => s.extract(&vs.root(), genome),
            Net::SinglePath(s) => s.extract(&vs.root(), genome, r),
            Net::Fixed(_) => return Err(ObjectiveError::NotASupernet),
        };
        let batch = self.eval.batch.max(1);
        if self.eval.calib_batches > 0 {
            try_recalibrate_bn(&mut model, train.as_ref(), r, self.eval.calib_batches, batch.min(train.len()), 0)?;
        }
        let acc =
            try_evaluate(&|x| model.forward_t(x, false), val.as_ref(), r, batch, self.eval.max_examples, self.device)?;
        Ok(acc.top1)
    }
    /// Serial: a libtorch forward already uses every core, and the evaluator is one model.
    fn accuracy_batch(
        &self,
        space: &dyn SearchSpace,
        items: &[(&Genome, &Network)],
    ) -> Result<Vec<f64>, ObjectiveError> {
        items.iter().map(|(g, n)| self.accuracy(space, g, n)).collect()
    }
}
