//! Checkpoints that survive a kill at any moment.
//!
//! Layout of a checkpoint directory:
//! - `step-00001234/` — `weights.safetensors` (VarStore, IR tensor names), `optimizer.safetensors`,
//!   optionally `arch_optimizer.safetensors`, and `state.json`;
//! - `checkpoint.json` — the state of the latest complete step directory, plus its name.
//!
//! A step directory is written completely before `checkpoint.json` is replaced by a rename
//! (atomic on POSIX), so a reader always sees one consistent step; older step directories
//! are removed afterwards.

use super::net::NetSpec;
use super::train::TrainConfig;
use super::NnError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const POINTER: &str = "checkpoint.json";
pub const WEIGHTS: &str = "weights.safetensors";
pub const OPTIMIZER: &str = "optimizer.safetensors";
pub const ARCH_OPTIMIZER: &str = "arch_optimizer.safetensors";

/// Everything needed to continue training exactly where it stopped.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub net: NetSpec,
    pub config: TrainConfig,
    /// Optimizer steps completed.
    pub step: usize,
    /// Epoch the next step belongs to.
    pub epoch: usize,
    pub steps_per_epoch: usize,
    /// Mean training loss of the steps since the previous checkpoint.
    pub recent_loss: Option<f64>,
    /// Step directory (relative to the checkpoint directory) holding the tensors.
    #[serde(default)]
    pub dir: String,
}

/// Creates the directory for `step`'s tensors; the caller writes the files, then calls [`commit`].
pub fn step_dir(root: &Path, step: usize) -> Result<PathBuf, NnError> {
    let dir = root.join(format!("step-{step:08}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|source| NnError::Io { action: "clear", path: dir.clone(), source })?;
    }
    std::fs::create_dir_all(&dir).map_err(|source| NnError::Io { action: "create", path: dir.clone(), source })?;
    Ok(dir)
}

/// Publishes the step directory named in `state.dir` and removes older ones.
pub fn commit(root: &Path, state: &State) -> Result<(), NnError> {
    let text = serde_json::to_string_pretty(state).map_err(NnError::SerializeState)?;
    let path = root.join(&state.dir).join("state.json");
    std::fs::write(&path, &text).map_err(|source| NnError::Io { action: "write", path, source })?;
    latency::files::write_atomic(&root.join(POINTER), text.as_bytes()).map_err(NnError::Publish)?;
    let listed = std::fs::read_dir(root).map_err(|source| NnError::Io { action: "list", path: root.into(), source })?;
    for e in listed.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("step-") && name != state.dir {
            std::fs::remove_dir_all(e.path()).ok();
        }
    }
    Ok(())
}

/// Reads the latest committed state; `Ok(None)` when the directory has no checkpoint yet.
pub fn latest(root: &Path) -> Result<Option<(State, PathBuf)>, NnError> {
    let pointer = root.join(POINTER);
    if !pointer.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&pointer).map_err(|source| NnError::Io {
        action: "read",
        path: pointer.clone(),
        source,
    })?;
    let state: State =
        serde_json::from_str(&text).map_err(|source| NnError::NotACheckpoint { path: pointer.clone(), source })?;
    let dir = root.join(&state.dir);
    if !dir.join(WEIGHTS).is_file() {
        return Err(NnError::NoWeights { pointer, dir });
    }
    Ok(Some((state, dir)))
}
