//! Any IR network as a trainable tch module.

use super::layers::{self, Ctx, LayerTensors};
use spaces::ir::Network;
use tch::nn::{ModuleT, Path, VarStore};
use tch::Tensor;

/// BN momentum (PyTorch convention) used unless a caller sets another one.
pub const BN_MOMENTUM: f64 = 0.1;

/// A network whose variables live in a VarStore under the IR's tensor names.
#[derive(Debug)]
pub struct Model {
    pub net: Network,
    pub tensors: Vec<LayerTensors>,
    pub bn_momentum: f64,
}

impl Model {
    /// Creates the variables of every layer of `net` under `root`.
    pub fn new(root: &Path, net: &Network) -> Model {
        let tensors = net.layers.iter().map(|l| layers::layer_vars(root, l)).collect();
        Model { net: net.clone(), tensors, bn_momentum: BN_MOMENTUM }
    }

    /// The same network over detached views of the weights (shared storage, no autograd).
    pub fn detached(&self) -> Model {
        let tensors = self.tensors.iter().map(|m| m.iter().map(|(k, v)| (k.clone(), v.detach())).collect()).collect();
        Model { net: self.net.clone(), tensors, bn_momentum: self.bn_momentum }
    }

    pub fn ctx(&self, train: bool) -> Ctx {
        Ctx { train, bn_eps: self.net.bn_eps, bn_momentum: self.bn_momentum }
    }
}

impl ModuleT for Model {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ctx = self.ctx(train);
        let mut x = xs.shallow_clone();
        for (layer, w) in self.net.layers.iter().zip(&self.tensors) {
            x = layers::forward(layer, w, &x, &ctx);
        }
        x
    }
}

/// Number of trainable scalars in a VarStore.
pub fn trainable_params(vs: &VarStore) -> u64 {
    vs.trainable_variables().iter().map(|t| t.numel() as u64).sum()
}

/// Checks that `vs` holds exactly the tensors `net` names, with the IR's shapes and
/// trainability; returns a message naming the first mismatch.
pub fn check_names(vs: &VarStore, net: &Network) -> Result<(), String> {
    let vars = vs.variables();
    let trainable: Vec<Tensor> = vs.trainable_variables();
    let is_trainable = |t: &Tensor| trainable.iter().any(|u| u.data_ptr() == t.data_ptr());
    let mut expected = 0;
    for layer in &net.layers {
        for spec in layer.param_specs() {
            expected += 1;
            let t = vars.get(&spec.name).ok_or_else(|| format!("VarStore lacks {}", spec.name))?;
            let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
            if shape != spec.shape {
                return Err(format!("{}: shape {shape:?}, IR says {:?}", spec.name, spec.shape));
            }
            if is_trainable(t) != spec.trainable {
                return Err(format!("{}: trainable {} but IR says {}", spec.name, !spec.trainable, spec.trainable));
            }
        }
    }
    if vars.len() != expected {
        return Err(format!("VarStore has {} tensors, the IR names {expected}", vars.len()));
    }
    Ok(())
}
