//! A predictor compiled per gene choice of a layer-wise space ([`spaces::GeneLayout`]): a
//! member is priced from its genome, with no network built — the form a search's hot loop
//! uses. Two kinds of predictor compile:
//!
//! - additive per layer ([`LayerTable`]): `scale · Σ_{present positions} T[r][position][choice] + offset`;
//! - additive up to a final function ([`LayerEmbedding`](crate::embedding::LayerEmbedding), the latency MLP):
//!   `finish(Σ_{present positions} E[r][position][choice], r)`, element-wise over vectors.
//!
//! The positions are the network's layers in order and each entry is the value the predictor
//! computes for that layer, so the sum is the predictor's own `predict_ms` bit for bit (same
//! values, same order; an untimed candidate adds +0.0 or nothing, which changes no sum).

use crate::additive::{Calibration, LayerTable};
use crate::embedding::with_zeros;
use crate::LatencyPredictor;
use spaces::layout::{GeneLayout, Position};
use spaces::Genome;
use std::sync::Arc;

pub struct GeneTable {
    resolution_gene: Option<usize>,
    resolutions: Vec<u32>,
    /// Positions that hold a timed layer for some choice (dropout-only positions are left out).
    positions: Vec<Position>,
    /// Start of each position's candidates in one resolution's block of entries.
    base: Vec<usize>,
    /// Candidates per resolution: the block size of the entries.
    per_resolution: usize,
    entries: Entries,
}

enum Entries {
    /// Raw layer costs, `[resolution][position][choice]` flattened, and each resolution's
    /// table calibration.
    Additive { costs: Vec<f64>, calibration: Vec<Calibration> },
    /// Layer vectors of `width` values, `[resolution][position][choice][width]` flattened; a
    /// candidate that is not timed (a dropout) has zeros, which leave the sum's bits as they are
    /// (it starts at +0.0, so it is never -0.0).
    Embedded { width: usize, vectors: Vec<f32>, predictor: Arc<dyn LatencyPredictor> },
}

/// The positions that hold a timed layer for some choice, and each one's first candidate
/// index in a resolution's block (plus the block size).
fn kept_positions(layout: &GeneLayout) -> Option<(Vec<usize>, Vec<usize>, usize)> {
    let first = layout.layers.first()?;
    let kept: Vec<usize> = (0..layout.positions.len())
        .filter(|&p| layout.layers.iter().any(|by_pos| by_pos[p].iter().any(|l| l.is_timed())))
        .collect();
    let mut base = Vec::with_capacity(kept.len());
    let mut per_resolution = 0;
    for &p in &kept {
        base.push(per_resolution);
        per_resolution += first[p].len();
    }
    Some((kept, base, per_resolution))
}

impl GeneTable {
    /// Compiles `layout` with the per-resolution tables `table(r)`; `None` when a resolution
    /// has no table or a candidate layer is not in its table (then networks are priced one by one).
    pub fn compile<'a>(layout: &GeneLayout, table: impl Fn(u32) -> Option<&'a LayerTable>) -> Option<GeneTable> {
        let (kept, base, per_resolution) = kept_positions(layout)?;
        let mut costs = Vec::with_capacity(per_resolution * layout.resolutions.len());
        let mut calibration = Vec::with_capacity(layout.resolutions.len());
        for (&r, by_pos) in layout.resolutions.iter().zip(&layout.layers) {
            let t = table(r)?;
            for &p in &kept {
                for l in &by_pos[p] {
                    costs.push(if l.is_timed() { t.get(l)? } else { 0.0 });
                }
            }
            calibration.push(t.calibration());
        }
        Some(GeneTable::new(layout, &kept, base, per_resolution, Entries::Additive { costs, calibration }))
    }

    /// Compiles `layout` with `predictor`'s [`LayerEmbedding`](crate::embedding::LayerEmbedding);
    /// `None` when it has none.
    pub fn compile_embedded(layout: &GeneLayout, predictor: Arc<dyn LatencyPredictor>) -> Option<GeneTable> {
        let (Some(e), Some((kept, base, per_resolution))) = (predictor.layer_embedding(), kept_positions(layout))
        else {
            return None;
        };
        let width = e.width();
        let mut vectors = Vec::with_capacity(per_resolution * layout.resolutions.len() * width);
        for by_pos in &layout.layers {
            for &p in &kept {
                for l in &by_pos[p] {
                    let start = vectors.len();
                    vectors.resize(start + width, 0.0);
                    if l.is_timed() {
                        e.embed(l, &mut vectors[start..]);
                    }
                }
            }
        }
        let entries = Entries::Embedded { width, vectors, predictor };
        Some(GeneTable::new(layout, &kept, base, per_resolution, entries))
    }

    fn new(layout: &GeneLayout, kept: &[usize], base: Vec<usize>, per_resolution: usize, entries: Entries) -> Self {
        GeneTable {
            resolution_gene: layout.resolution_gene,
            resolutions: layout.resolutions.clone(),
            positions: kept.iter().map(|&p| layout.positions[p].clone()).collect(),
            base,
            per_resolution,
            entries,
        }
    }

    /// The latency of member `g` of the space the layout came from.
    #[inline]
    pub fn latency_ms(&self, g: &Genome) -> f64 {
        let ri = self.resolution_gene.map_or(0, |i| g.0[i] as usize);
        let block = ri * self.per_resolution;
        let chosen = self.positions.iter().zip(&self.base).filter(|(pos, _)| pos.present(g));
        match &self.entries {
            Entries::Additive { costs, calibration } => {
                let t = &costs[block..block + self.per_resolution];
                let mut sum = 0.0;
                for (pos, &base) in chosen {
                    sum += t[base + pos.choice(g)];
                }
                calibration[ri].apply(sum)
            }
            Entries::Embedded { width, vectors, predictor } => with_zeros(*width, |acc| {
                for (pos, &base) in chosen {
                    let c = block + base + pos.choice(g);
                    let v = &vectors[c * width..(c + 1) * width];
                    acc.iter_mut().zip(v).for_each(|(a, x)| *a += x);
                }
                let e = predictor.layer_embedding().expect("compiled from the predictor's embedding");
                e.finish(acc, self.resolutions[ri])
            }),
        }
    }
}
