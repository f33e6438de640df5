//! Which models a job times, built from a search space: every distinct layer of
//! its lookup table as a single-layer model, or sampled member networks.

use super::job::{ModelSource, SourceError};
use super::layers::LayerMap;
use super::record::{Kind, ModelId};
use crate::modelfile::precision::{Precision, Quantization};
use crate::modelfile::tflite::{layer_model_as, network_model_as, network_model_mapped};
use crate::modelfile::ModelFileError;
use rand::SeedableRng;
use spaces::ir::{Layer, Weights};
use spaces::{ArchError, Genome, SearchSpace};
use std::collections::{BTreeSet, HashMap};

/// Why a space's models could not be chosen or written.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{space} has no resolution {resolution}; it has {supported:?}")]
    NoResolution { space: String, resolution: u32, supported: Vec<u32> },
    #[error("{space} yielded only {found} distinct members in {attempts} samples")]
    TooFewMembers { space: String, found: usize, attempts: usize },
    #[error("model of space {asked} asked of {space}")]
    OtherSpace { asked: String, space: String },
    #[error("a {asked} model asked of a {writes} source")]
    OtherPrecision { asked: Precision, writes: Precision },
    #[error("unknown layer key {0}")]
    UnknownLayer(String),
    /// A network's architecture that its space does not read.
    #[error("{arch}")]
    Arch {
        arch: String,
        #[source]
        source: ArchError,
    },
    #[error(transparent)]
    File(#[from] ModelFileError),
}

/// Models of one search space; weights are random from `seed` (latency does not depend on their values).
pub struct SpaceModels {
    space: Box<dyn SearchSpace>,
    layers: HashMap<String, Layer>,
    seed: u64,
    quantization: Quantization,
}

impl SpaceModels {
    /// Every distinct timed layer at `resolutions` (all of the space's when empty).
    pub fn table(
        space: Box<dyn SearchSpace>,
        resolutions: &[u32],
        seed: u64,
    ) -> Result<(SpaceModels, Vec<ModelId>), ModelError> {
        let supported = space.resolutions();
        let resolutions = if resolutions.is_empty() { supported.clone() } else { resolutions.to_vec() };
        if let Some(r) = resolutions.iter().find(|r| !supported.contains(r)) {
            return Err(ModelError::NoResolution { space: space.name().into(), resolution: *r, supported });
        }
        let mut ids = Vec::new();
        let mut layers = HashMap::new();
        for r in &resolutions {
            for layer in space.layer_table(&[*r]) {
                if let std::collections::hash_map::Entry::Vacant(slot) = layers.entry(layer.key()) {
                    ids.push(ModelId::layer(space.name(), slot.key().clone(), *r));
                    slot.insert(layer);
                }
            }
        }
        Ok((SpaceModels { space, layers, seed, quantization: Quantization::default() }, ids))
    }

    /// `n` distinct members sampled with `seed` (the same seed always gives the same list,
    /// so a resumed run finds its earlier records).
    pub fn networks(
        space: Box<dyn SearchSpace>,
        n: usize,
        seed: u64,
    ) -> Result<(SpaceModels, Vec<ModelId>), ModelError> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut seen = BTreeSet::new();
        let mut ids = Vec::new();
        // Small spaces may have fewer than n members; give up after many repeats instead of looping forever.
        let mut attempts = 0usize;
        while ids.len() < n && attempts < n.saturating_mul(100).max(1000) {
            attempts += 1;
            let mut g = space.sample(&mut rng);
            space.canonicalize(&mut g);
            let arch = space.to_json(&g).to_string();
            if seen.insert(arch.clone()) {
                ids.push(ModelId::network(space.name(), arch, space.resolution(&g)));
            }
        }
        if ids.len() < n {
            return Err(ModelError::TooFewMembers { space: space.name().into(), found: ids.len(), attempts });
        }
        Ok((SpaceModels { space, layers: HashMap::new(), seed, quantization: Quantization::default() }, ids))
    }
}

impl SpaceModels {
    /// Writes every model in the precision `q` asks for; `ids` (from [`SpaceModels::table`] or
    /// [`SpaceModels::networks`]) carry that precision, so it is part of their records' identity.
    pub fn with_quantization(mut self, q: Quantization, ids: Vec<ModelId>) -> (SpaceModels, Vec<ModelId>) {
        let ids = ids.into_iter().map(|m| m.with_quantization(&q)).collect();
        self.quantization = q;
        (self, ids)
    }
}

impl SpaceModels {
    /// Refuses a model of another space or precision than this source writes.
    fn check(&self, model: &ModelId) -> Result<(), ModelError> {
        if model.space != self.space.name() {
            return Err(ModelError::OtherSpace { asked: model.space.clone(), space: self.space.name().into() });
        }
        if (model.precision, model.int8_io) != (self.quantization.precision, self.quantization.int8_io) {
            return Err(ModelError::OtherPrecision { asked: model.precision, writes: self.quantization.precision });
        }
        Ok(())
    }

    /// The file of `model` (see [`ModelSource::build`]).
    pub fn file(&self, model: &ModelId) -> Result<Vec<u8>, ModelError> {
        self.check(model)?;
        match model.kind {
            Kind::Layer => {
                let layer = self.layers.get(&model.key).ok_or_else(|| ModelError::UnknownLayer(model.key.clone()))?;
                Ok(layer_model_as(layer, self.seed, &self.quantization)?)
            }
            Kind::Network => {
                let g = self.genome(model)?;
                network_file(&*self.space, &g, model.resolution, self.seed, &self.quantization)
            }
        }
    }

    /// A network's file with its tensor → layer map (see [`ModelSource::build_mapped`]).
    pub fn file_mapped(&self, model: &ModelId) -> Result<(Vec<u8>, Option<LayerMap>), ModelError> {
        if model.kind != Kind::Network {
            return self.file(model).map(|bytes| (bytes, None));
        }
        self.check(model)?;
        let g = self.genome(model)?;
        let net = self.space.network_at(&g, model.resolution);
        let (bytes, tensors) = network_model_mapped(&net, &Weights::random(&net, self.seed), &self.quantization)?;
        Ok((bytes, Some(LayerMap::new(&net, tensors))))
    }

    fn genome(&self, model: &ModelId) -> Result<Genome, ModelError> {
        self.space.parse(&model.arch).map_err(|source| ModelError::Arch { arch: model.arch.clone(), source })
    }
}

impl ModelSource for SpaceModels {
    fn build(&self, model: &ModelId) -> Result<Vec<u8>, SourceError> {
        Ok(self.file(model)?)
    }

    /// A network's file with its tensor → layer map (the same bytes as [`ModelSource::build`]).
    fn build_mapped(&self, model: &ModelId) -> Result<(Vec<u8>, Option<LayerMap>), SourceError> {
        Ok(self.file_mapped(model)?)
    }
}

/// The TFLite file of member `g` at `resolution`, with random weights from `seed`, in the
/// precision `q` asks for.
pub fn network_file(
    space: &dyn SearchSpace,
    g: &Genome,
    resolution: u32,
    seed: u64,
    q: &Quantization,
) -> Result<Vec<u8>, ModelError> {
    let net = space.network_at(g, resolution);
    Ok(network_model_as(&net, &Weights::random(&net, seed), q)?)
}
