//! Which models a job times, built from a search space: every distinct layer of
//! its lookup table as a single-layer model, or sampled member networks.

use super::job::ModelSource;
use super::layers::LayerMap;
use super::record::{Kind, ModelId};
use crate::modelfile::precision::Quantization;
use crate::modelfile::tflite::{layer_model_as, network_model_as, network_model_mapped};
use rand::SeedableRng;
use spaces::ir::{Layer, Weights};
use spaces::{Genome, SearchSpace};
use std::collections::{BTreeSet, HashMap};

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
    ) -> Result<(SpaceModels, Vec<ModelId>), String> {
        let supported = space.resolutions();
        let resolutions = if resolutions.is_empty() { supported.clone() } else { resolutions.to_vec() };
        if let Some(r) = resolutions.iter().find(|r| !supported.contains(r)) {
            return Err(format!("{} has no resolution {r}; it has {supported:?}", space.name()));
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
    pub fn networks(space: Box<dyn SearchSpace>, n: usize, seed: u64) -> Result<(SpaceModels, Vec<ModelId>), String> {
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
            return Err(format!("{} yielded only {} distinct members in {attempts} samples", space.name(), ids.len()));
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
    fn check(&self, model: &ModelId) -> Result<(), String> {
        if model.space != self.space.name() {
            return Err(format!("model of space {} asked of {}", model.space, self.space.name()));
        }
        if (model.precision, model.int8_io) != (self.quantization.precision, self.quantization.int8_io) {
            return Err(format!("a {} model asked of a {} source", model.precision, self.quantization.precision));
        }
        Ok(())
    }
}

impl ModelSource for SpaceModels {
    fn build(&self, model: &ModelId) -> Result<Vec<u8>, String> {
        self.check(model)?;
        match model.kind {
            Kind::Layer => {
                let layer = self.layers.get(&model.key).ok_or_else(|| format!("unknown layer key {}", model.key))?;
                layer_model_as(layer, self.seed, &self.quantization).map_err(|e| e.to_string())
            }
            Kind::Network => {
                let g = self.space.parse(&model.arch).map_err(|e| format!("{}: {e}", model.arch))?;
                network_file_as(&*self.space, &g, model.resolution, self.seed, &self.quantization)
            }
            Kind::LayerInNetwork => Err(format!("{} is a dataset row, not a model file", model.label())),
        }
    }

    /// A network's file with its tensor → layer map (the same bytes as [`ModelSource::build`]).
    fn build_mapped(&self, model: &ModelId) -> Result<(Vec<u8>, Option<LayerMap>), String> {
        if model.kind != Kind::Network {
            return self.build(model).map(|bytes| (bytes, None));
        }
        self.check(model)?;
        let g = self.space.parse(&model.arch).map_err(|e| format!("{}: {e}", model.arch))?;
        let net = self.space.network_at(&g, model.resolution);
        let (bytes, tensors) = network_model_mapped(&net, &Weights::random(&net, self.seed), &self.quantization)
            .map_err(|e| e.to_string())?;
        Ok((bytes, Some(LayerMap::new(&net, tensors))))
    }
}

/// The TFLite file of member `g` at `resolution`, with random weights from `seed`.
pub fn network_file(space: &dyn SearchSpace, g: &Genome, resolution: u32, seed: u64) -> Result<Vec<u8>, String> {
    network_file_as(space, g, resolution, seed, &Quantization::default())
}

/// Like [`network_file`], in the precision `q` asks for.
pub fn network_file_as(
    space: &dyn SearchSpace,
    g: &Genome,
    resolution: u32,
    seed: u64,
    q: &Quantization,
) -> Result<Vec<u8>, String> {
    let net = space.network_at(g, resolution);
    network_model_as(&net, &Weights::random(&net, seed), q).map_err(|e| e.to_string())
}
