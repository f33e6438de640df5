//! TorchScript export by tracing: the eval-mode forward pass on a fixed input shape is
//! recorded with the current weights as constants, saved, and loadable from C++/Python
//! (`torch.jit.load`) or tch's `CModule::load`.

use super::model::Model;
use super::NnError;
use std::path::Path;
use tch::nn::ModuleT;
use tch::{CModule, Device, Kind, Tensor};

/// Traces `model` in eval mode on a `[1, 3, resolution, resolution]` input. Supernets
/// export through an extracted sub-network (a plain [`Model`]).
pub fn trace(model: &Model, resolution: u32, device: Device) -> Result<CModule, NnError> {
    let r = resolution as i64;
    // The tracer refuses grad-requiring constants: trace a detached view of the weights.
    let module = model.detached();
    let example = Tensor::randn([1, 3, r, r], (Kind::Float, device));
    let _guard = tch::no_grad_guard();
    let mut forward = |inputs: &[Tensor]| vec![module.forward_t(&inputs[0], false)];
    CModule::create_by_tracing("hwnas", "forward", &[example], &mut forward).map_err(NnError::Trace)
}

/// Traces and writes a TorchScript file.
pub fn export(module: &Model, resolution: u32, device: Device, path: &Path) -> Result<(), NnError> {
    let m = trace(module, resolution, device)?;
    m.save(path).map_err(|source| NnError::TorchScript {
        action: "write",
        preposition: "to",
        path: path.into(),
        source,
    })
}

/// Loads a TorchScript file for inference.
pub fn load(path: &Path, device: Device) -> Result<CModule, NnError> {
    let mut m = CModule::load_on_device(path, device).map_err(|source| NnError::TorchScript {
        action: "load",
        preposition: "from",
        path: path.into(),
        source,
    })?;
    m.set_eval();
    Ok(m)
}
