//! A per-layer latency table compiled per gene choice of a layer-wise space
//! ([`spaces::GeneLayout`]): a member's latency is
//! `scale · Σ_{present positions} T[r][position][choice] + offset`, read from its genome
//! with no network built. The positions are the network's layers in order and each entry is
//! the [`LayerTable`]'s value for that layer, so the sum is the predictor's `predict_ms`
//! bit for bit (same values, same order; an untimed candidate adds +0.0, which changes no sum).

use predictors::additive::{Calibration, LayerTable};
use spaces::layout::{GeneLayout, Position};
use spaces::Genome;

pub struct GeneTable {
    resolution_gene: Option<usize>,
    /// Positions that hold a timed layer for some choice (dropout-only positions are left out).
    positions: Vec<Position>,
    /// Start of each position's candidates in one resolution's block of `costs`.
    base: Vec<usize>,
    /// Candidates per resolution: the block size of `costs`.
    per_resolution: usize,
    /// Raw layer costs, `[resolution][position][choice]` flattened.
    costs: Vec<f64>,
    calibration: Vec<Calibration>,
}

impl GeneTable {
    /// Compiles `layout` with the per-resolution tables `table(r)`; `None` when a resolution
    /// has no table or a candidate layer is not in its table (then networks are priced one by one).
    pub fn compile<'a>(layout: &GeneLayout, table: impl Fn(u32) -> Option<&'a LayerTable>) -> Option<GeneTable> {
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
        let positions = kept.iter().map(|&p| layout.positions[p].clone()).collect();
        Some(GeneTable { resolution_gene: layout.resolution_gene, positions, base, per_resolution, costs, calibration })
    }

    /// The latency of member `g` of the space the layout came from.
    #[inline]
    pub fn latency_ms(&self, g: &Genome) -> f64 {
        let ri = self.resolution_gene.map_or(0, |i| g.0[i] as usize);
        let t = &self.costs[ri * self.per_resolution..(ri + 1) * self.per_resolution];
        let mut sum = 0.0;
        for (pos, &base) in self.positions.iter().zip(&self.base) {
            if pos.present(g) {
                sum += t[base + pos.choice(g)];
            }
        }
        self.calibration[ri].apply(sum)
    }
}
