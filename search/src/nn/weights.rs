//! Conversions between tch variables and the IR's framework-free [`Weights`] (same tensor
//! names), so a trained network can be handed to the TFLite/ONNX writers and back.

use super::model::Model;
use super::NnError;
use spaces::ir::{Network, Weights};
use tch::nn::{Path, VarStore};
use tch::{Kind, Tensor};

fn to_ir(t: &Tensor) -> Result<spaces::ir::Tensor, NnError> {
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let flat = t.detach().to_device(tch::Device::Cpu).to_kind(Kind::Float).contiguous().view([-1]);
    let data = Vec::<f32>::try_from(&flat).map_err(NnError::ToF32)?;
    Ok(spaces::ir::Tensor::new(shape, data))
}

/// Every variable of `vs` (trained values and BN statistics) as IR weights.
pub fn from_var_store(vs: &VarStore) -> Result<Weights, NnError> {
    let mut w = Weights::new();
    for (name, t) in vs.variables() {
        let ir = to_ir(&t)?;
        w.insert(name, ir.shape, ir.data)?;
    }
    Ok(w)
}

impl Model {
    /// The model's tensors under their IR names.
    pub fn to_weights(&self) -> Result<Weights, NnError> {
        let mut w = Weights::new();
        for (layer, tensors) in self.net.layers.iter().zip(&self.tensors) {
            for (part, t) in tensors {
                let ir = to_ir(t)?;
                let name = if part.is_empty() { layer.name.clone() } else { format!("{}.{part}", layer.name) };
                w.insert(name, ir.shape, ir.data)?;
            }
        }
        Ok(w)
    }

    /// A model of `net` under `root` initialised from `weights`, which must match `net` exactly.
    pub fn from_weights(root: &Path, net: &Network, weights: &Weights) -> Result<Model, NnError> {
        weights.check(net).map_err(NnError::WeightsMismatch)?;
        let mut model = Model::new(root, net);
        tch::no_grad(|| {
            for (layer, tensors) in net.layers.iter().zip(&mut model.tensors) {
                for (part, t) in tensors.iter_mut() {
                    let src = weights.get(&format!("{}.{part}", layer.name)).expect("checked above");
                    let shape: Vec<i64> = src.shape.iter().map(|&d| d as i64).collect();
                    t.copy_(&Tensor::from_slice(&src.data).view(shape.as_slice()));
                }
            }
        });
        Ok(model)
    }
}
