//! A float32 evaluator of [`Graph`] (NCHW, batch 1) and the activation ranges an
//! int8 model is calibrated with: the min and max of every value over the
//! calibration inputs, as TFLite's post-training quantizer records them.
//!
//! The evaluator follows the graph's PyTorch semantics (see [`super::graph`]); it is
//! plain loops written so that the inner loop runs over contiguous output pixels,
//! which the compiler vectorises in release builds.

use super::graph::{ConvStep, Dims, Graph, Step};
use super::{Calibration, ModelFileError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spaces::ir::{Act, Gate, Shape};

/// A closed range [min, max].
pub type Range = (f32, f32);

/// What calibration saw: a range per value (0 = the input, `i + 1` = node `i`) and,
/// per node, the range of the one intermediate tensor some lowerings need: the
/// pre-activation output of a conv or linear followed by h-swish, and the
/// relu6(x + 3) of an h-sigmoid gate.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranges {
    pub values: Vec<Range>,
    pub inner: Vec<Option<Range>>,
}

impl Ranges {
    fn new(graph: &Graph) -> Ranges {
        Ranges {
            values: vec![(f32::INFINITY, f32::NEG_INFINITY); graph.nodes.len() + 1],
            inner: vec![None; graph.nodes.len()],
        }
    }
}

fn widen(r: &mut Range, data: &[f32]) {
    for &v in data {
        r.0 = r.0.min(v);
        r.1 = r.1.max(v);
    }
}

/// Length of one input of `graph` (C·H·W).
pub fn input_len(graph: &Graph) -> usize {
    let s = graph.input;
    (s.c * s.h * s.w) as usize
}

/// `samples` standard normal inputs of `graph`'s shape drawn from `seed`.
pub fn synthetic_inputs(graph: &Graph, seed: u64, samples: usize) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = input_len(graph);
    (0..samples)
        .map(|_| {
            (0..n)
                .map(|_| {
                    // Box–Muller: two uniforms give one standard normal.
                    let u1: f64 = 1.0 - rng.random::<f64>();
                    let u2: f64 = rng.random::<f64>();
                    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
                })
                .collect()
        })
        .collect()
}

/// The calibration inputs `calibration` names for `graph`, checked for length.
pub fn inputs(graph: &Graph, calibration: &Calibration) -> Result<Vec<Vec<f32>>, ModelFileError> {
    let expected = input_len(graph);
    if calibration_is_empty(calibration) {
        return Err(ModelFileError::Calibration("no calibration inputs: an int8 model needs at least one".into()));
    }
    match calibration {
        Calibration::Synthetic { seed, samples } => Ok(synthetic_inputs(graph, *seed, *samples)),
        Calibration::Inputs(given) => {
            if let Some((i, x)) = given.iter().enumerate().find(|(_, x)| x.len() != expected) {
                let s = graph.input;
                return Err(ModelFileError::Calibration(format!(
                    "calibration input {i} has {} values but the network's input {}x{}x{} (NCHW) needs {expected}",
                    x.len(),
                    s.c,
                    s.h,
                    s.w
                )));
            }
            Ok(given.clone())
        }
    }
}

fn calibration_is_empty(c: &Calibration) -> bool {
    match c {
        Calibration::Synthetic { samples, .. } => *samples == 0,
        Calibration::Inputs(v) => v.is_empty(),
    }
}

/// The min/max of every value of `graph` over `inputs` (each already of the right length).
pub fn ranges(graph: &Graph, inputs: &[Vec<f32>]) -> Ranges {
    let mut r = Ranges::new(graph);
    for x in inputs {
        evaluate_into(graph, x, Some(&mut r));
    }
    for v in r.values.iter_mut().chain(r.inner.iter_mut().flatten()) {
        if v.0 > v.1 {
            *v = (0.0, 0.0);
        }
    }
    r
}

/// The output of `graph` on `input` (NCHW, batch 1).
pub fn evaluate(graph: &Graph, input: &[f32]) -> Vec<f32> {
    evaluate_into(graph, input, None)
}

fn evaluate_into(graph: &Graph, input: &[f32], mut ranges: Option<&mut Ranges>) -> Vec<f32> {
    assert_eq!(input.len(), input_len(graph), "input length");
    // Each value is dropped after its last use, to keep memory to a few maps.
    let mut last_use = vec![0usize; graph.nodes.len() + 1];
    for (i, node) in graph.nodes.iter().enumerate() {
        for &v in &node.inputs {
            last_use[v] = i;
        }
    }
    let mut values: Vec<Option<Vec<f32>>> = vec![None; graph.nodes.len() + 1];
    values[0] = Some(input.to_vec());
    if let Some(r) = ranges.as_deref_mut() {
        widen(&mut r.values[0], input);
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        let get = |k: usize| values[node.inputs[k]].as_deref().expect("value alive");
        let in_dims = graph.dims(node.inputs[0]);
        let mut inner = None;
        let y = match &node.step {
            Step::Conv(c) => {
                let mut y = conv(get(0), map(in_dims), c);
                if c.act == Act::HSwish {
                    inner = Some(range_of(&y));
                }
                apply(&mut y, c.act);
                y
            }
            Step::GlobalMean => {
                let s = map(in_dims);
                let hw = (s.h * s.w) as usize;
                get(0).chunks(hw).map(|ch| (ch.iter().map(|&v| v as f64).sum::<f64>() / hw as f64) as f32).collect()
            }
            Step::Gate(Gate::Sigmoid) => get(0).iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect(),
            Step::Gate(Gate::HSigmoid) => {
                let shifted: Vec<f32> = get(0).iter().map(|&v| (v + 3.0).clamp(0.0, 6.0)).collect();
                inner = Some(range_of(&shifted));
                shifted.into_iter().map(|v| v / 6.0).collect()
            }
            Step::Mul => {
                let (a, b) = (get(0), get(1));
                let per = a.len() / b.len();
                a.iter().enumerate().map(|(j, &v)| v * b[j / per]).collect()
            }
            Step::Add => get(0).iter().zip(get(1)).map(|(a, b)| a + b).collect(),
            Step::AvgPool { stride } => avg_pool(get(0), map(in_dims), *stride),
            Step::ChannelShuffle { groups } => {
                let s = map(in_dims);
                let (g, per, hw) = (*groups as usize, (s.c / groups) as usize, (s.h * s.w) as usize);
                let x = get(0);
                let mut y = vec![0.0; x.len()];
                for gi in 0..g {
                    for j in 0..per {
                        let (to, from) = ((j * g + gi) * hw, (gi * per + j) * hw);
                        y[to..to + hw].copy_from_slice(&x[from..from + hw]);
                    }
                }
                y
            }
            Step::Linear { weight, bias, out, act } => {
                let x = get(0);
                let mut y: Vec<f32> = (0..*out as usize)
                    .map(|o| {
                        bias[o] + weight[o * x.len()..(o + 1) * x.len()].iter().zip(x).map(|(w, v)| w * v).sum::<f32>()
                    })
                    .collect();
                if *act == Act::HSwish {
                    inner = Some(range_of(&y));
                }
                apply(&mut y, *act);
                y
            }
        };
        if let Some(r) = ranges.as_deref_mut() {
            widen(&mut r.values[i + 1], &y);
            if let Some(ir) = inner {
                let slot = r.inner[i].get_or_insert(ir);
                *slot = (slot.0.min(ir.0), slot.1.max(ir.1));
            }
        }
        values[i + 1] = Some(y);
        for &v in &node.inputs {
            if last_use[v] == i && v != graph.output {
                values[v] = None;
            }
        }
    }
    values[graph.output].take().expect("output computed")
}

fn range_of(x: &[f32]) -> Range {
    let mut r = (f32::INFINITY, f32::NEG_INFINITY);
    widen(&mut r, x);
    r
}

fn map(d: Dims) -> Shape {
    match d {
        Dims::Map(s) => s,
        Dims::Vector(c) => Shape::new(c, 1, 1),
    }
}

fn apply(y: &mut [f32], act: Act) {
    match act {
        Act::None => {}
        Act::Relu => y.iter_mut().for_each(|v| *v = v.max(0.0)),
        Act::Relu6 => y.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)),
        Act::HSwish => y.iter_mut().for_each(|v| *v *= (*v + 3.0).clamp(0.0, 6.0) / 6.0),
    }
}

/// PyTorch Conv2d (padding k//2 on every side, groups) on a [C, H, W] map.
fn conv(x: &[f32], s: Shape, c: &ConvStep) -> Vec<f32> {
    let (cin, h, w) = (s.c as usize, s.h as usize, s.w as usize);
    let (k, st, p, g, out) =
        (c.kernel as usize, c.stride as usize, c.pad() as usize, c.groups as usize, c.out as usize);
    let (ho, wo) = (h.div_ceil(st), w.div_ceil(st));
    let (cg, og) = (cin / g, out / g);
    let mut y = vec![0.0f32; out * ho * wo];
    for o in 0..out {
        let plane = &mut y[o * ho * wo..(o + 1) * ho * wo];
        plane.iter_mut().for_each(|v| *v = c.bias[o]);
        let first_in = (o / og) * cg;
        for ci in 0..cg {
            let src = &x[(first_in + ci) * h * w..(first_in + ci + 1) * h * w];
            let wk = &c.weight[(o * cg + ci) * k * k..(o * cg + ci + 1) * k * k];
            for ky in 0..k {
                for kx in 0..k {
                    let wv = wk[ky * k + kx];
                    // Output columns whose input column ox·st + kx − p lies inside the map.
                    let ox0 = p.saturating_sub(kx).div_ceil(st);
                    let ox1 = if w + p > kx { ((w + p - kx - 1) / st + 1).min(wo) } else { 0 };
                    if ox0 >= ox1 {
                        continue;
                    }
                    for oy in 0..ho {
                        let iy = (oy * st + ky) as isize - p as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let row = &src[iy as usize * w..(iy as usize + 1) * w];
                        let dst = &mut plane[oy * wo + ox0..oy * wo + ox1];
                        let ix0 = ox0 * st + kx - p;
                        if st == 1 {
                            for (d, &v) in dst.iter_mut().zip(&row[ix0..ix0 + (ox1 - ox0)]) {
                                *d += wv * v;
                            }
                        } else {
                            for (j, d) in dst.iter_mut().enumerate() {
                                *d += wv * row[ix0 + j * st];
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

/// AvgPool2d(kernel = stride, stride, ceil_mode), divisor counting input pixels only.
fn avg_pool(x: &[f32], s: Shape, st: u32) -> Vec<f32> {
    let (c, h, w, st) = (s.c as usize, s.h as usize, s.w as usize, st as usize);
    let (ho, wo) = (h.div_ceil(st), w.div_ceil(st));
    let mut y = Vec::with_capacity(c * ho * wo);
    for ch in 0..c {
        for oy in 0..ho {
            for ox in 0..wo {
                let (mut sum, mut n) = (0.0f32, 0);
                for iy in oy * st..(oy * st + st).min(h) {
                    for ix in ox * st..(ox * st + st).min(w) {
                        sum += x[(ch * h + iy) * w + ix];
                        n += 1;
                    }
                }
                y.push(sum / n as f32);
            }
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use spaces::ir::{NetBuilder, Op, Weights};

    fn conv_net(stride: u32) -> (Graph, ConvStep) {
        let mut b = NetBuilder::new(5);
        b.push("stem", Op::conv_bn(2, 3, stride, Act::None));
        let net = b.finish();
        let g = Graph::lower(&net, &Weights::random(&net, 3)).unwrap();
        let Step::Conv(c) = g.nodes[0].step.clone() else { panic!() };
        (g, c)
    }

    #[test]
    fn conv_matches_a_direct_sum() {
        for stride in [1, 2] {
            let (g, c) = conv_net(stride);
            let x = synthetic_inputs(&g, 1, 1).remove(0);
            let y = evaluate(&g, &x);
            let (h, ho) = (5usize, 5usize.div_ceil(stride as usize));
            for o in 0..2 {
                for oy in 0..ho {
                    for ox in 0..ho {
                        let mut s = c.bias[o] as f64;
                        for ci in 0..3 {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (iy, ix) = (
                                        (oy * stride as usize + ky) as isize - 1,
                                        (ox * stride as usize + kx) as isize - 1,
                                    );
                                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < h {
                                        s += c.weight[((o * 3 + ci) * 3 + ky) * 3 + kx] as f64
                                            * x[(ci * h + iy as usize) * h + ix as usize] as f64;
                                    }
                                }
                            }
                        }
                        let got = y[(o * ho + oy) * ho + ox] as f64;
                        assert!((got - s).abs() < 1e-4, "stride {stride} ({o},{oy},{ox}): {got} vs {s}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_wrong_calibration_length_is_refused_naming_both_lengths() {
        let (g, _) = conv_net(1);
        let e = inputs(&g, &Calibration::Inputs(vec![vec![0.0; 75], vec![0.0; 74]])).unwrap_err().to_string();
        assert!(e.contains("74") && e.contains("75") && e.contains("input 1"), "{e}");
        assert!(inputs(&g, &Calibration::Inputs(vec![])).is_err());
        assert!(inputs(&g, &Calibration::Synthetic { seed: 0, samples: 0 }).is_err());
        assert_eq!(inputs(&g, &Calibration::Synthetic { seed: 0, samples: 2 }).unwrap().len(), 2);
    }

    #[test]
    fn ranges_cover_every_value_and_the_hswish_input() {
        let mut b = NetBuilder::new(6);
        b.push("stem", Op::conv_bn(4, 3, 1, Act::HSwish));
        let net = b.finish();
        let g = Graph::lower(&net, &Weights::random(&net, 0)).unwrap();
        let xs = synthetic_inputs(&g, 0, 3);
        let r = ranges(&g, &xs);
        let lo = xs.iter().flatten().cloned().fold(f32::INFINITY, f32::min);
        assert_eq!(r.values[0].0, lo);
        let (pre, post) = (r.inner[0].unwrap(), r.values[1]);
        assert!(pre.0 < post.0 && post.0 >= -0.375 && pre.1 >= post.1, "{pre:?} {post:?}");
    }
}
