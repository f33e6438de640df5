//! Predictors that are additive per layer up to a final function: a network's prediction is
//! `finish(Σ_{timed layers} embed(layer), resolution)`, the sum taken element-wise over
//! fixed-width vectors in layer order. The latency MLP is one: its first layer is linear in
//! the layer tokens and the physical totals, so each layer's share of the first layer's
//! pre-activation can be computed once and summed ([`crate::latency_mlp`]). Like an
//! additive table, such a predictor compiles per gene choice ([`crate::gene_table`]), so a
//! search prices members without building their networks.

use spaces::ir::Layer;

pub trait LayerEmbedding: Send + Sync {
    /// Length of the vectors [`embed`](Self::embed) adds into.
    fn width(&self) -> usize;
    /// Adds layer `l`'s contribution (which may depend on its name: its position in the
    /// network) into `acc`, a vector of [`width`](Self::width) values.
    fn embed(&self, l: &Layer, acc: &mut [f32]);
    /// The prediction (ms) for a network at input resolution `resolution` whose timed
    /// layers' contributions sum to `acc`.
    fn finish(&self, acc: &[f32], resolution: u32) -> f64;
}

/// Runs `f` on a zeroed buffer of `width` values: on the stack when it is small (a search
/// prices millions of members; an allocation per member would cost as much as the sum).
#[inline]
pub fn with_zeros<R>(width: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    const STACK: usize = 256;
    if width <= STACK {
        let mut buf = [0f32; STACK];
        f(&mut buf[..width])
    } else {
        f(&mut vec![0f32; width])
    }
}
