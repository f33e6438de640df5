//! MnasNet's factorized hierarchical space (Tan et al., CVPR 2019) over the
//! MobileNetV2 base: 7 blocks, each choosing its conv op, kernel, SE ratio, skip
//! op, filter multiplier and layer count (N-1, N, N+1 of MobileNetV2's, at least 1).
//! See `shared/reference/spaces.md` §4.
//!
//! Our reading where the paper is silent [inferred]: `dwconv` is the depthwise
//! separable conv (MBConv e1, no expansion conv); `conv` is a plain k x k conv +
//! BN + ReLU; SE follows tensorflow/tpu (reduce = max(1, int(input * 0.25))).
//! Skip ops: `identity` adds the input where stride is 1 and widths match;
//! `pool` also adds an average-pooled input on strided layers of equal width;
//! `none` adds nothing.

use super::blocks::{conv_block, BlockArgs, SeStyle};
use crate::genome::{Gene, Genome};
use crate::ir::{Act, Layer, NetBuilder, Network, Op, Shape, Shortcut};
use crate::json;
use crate::util::make_divisible;
use crate::{ArchError, SearchSpace, SpaceFamily};
use serde_json::{json, Value};

pub const OPS: [&str; 4] = ["conv", "dwconv", "mbconv3", "mbconv6"];
const KERNELS: [u32; 2] = [3, 5];
const SE: [f64; 2] = [0.0, 0.25];
pub const SKIPS: [&str; 3] = ["none", "identity", "pool"];
const FILTERS: [f64; 3] = [0.75, 1.0, 1.25];
/// MobileNetV2 stages (t, c, n, s) without t: (c, n, s).
const BASE: [(u32, u32, u32); 7] =
    [(16, 1, 1), (24, 2, 2), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1)];
const FIELDS: [&str; 6] = ["op", "kernel", "se", "skip", "filters", "layers"];

/// One block's decoded choices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockChoice {
    pub op: usize,
    pub kernel: u32,
    pub se: f64,
    pub skip: usize,
    pub filters: f64,
    pub layers: u32,
}

pub struct MnasNet {
    genes: Vec<Gene>,
}

fn layer_choices(n: u32) -> Vec<u32> {
    (n.saturating_sub(1).max(1)..=n + 1).collect()
}

impl Default for MnasNet {
    fn default() -> Self {
        let mut genes = Vec::new();
        for (i, &(_, n, _)) in BASE.iter().enumerate() {
            let f = |name: &str| format!("blocks[{i}].{name}");
            genes.push(Gene::new(f("op"), OPS));
            genes.push(Gene::new(f("kernel"), KERNELS));
            genes.push(Gene::new(f("se"), SE));
            genes.push(Gene::new(f("skip"), SKIPS));
            genes.push(Gene::new(f("filters"), FILTERS));
            genes.push(Gene::new(f("layers"), layer_choices(n)));
        }
        MnasNet { genes }
    }
}

impl MnasNet {
    fn choice(g: &Genome, i: usize) -> BlockChoice {
        let c = &g.0[i * 6..i * 6 + 6];
        BlockChoice {
            op: c[0] as usize,
            kernel: KERNELS[c[1] as usize],
            se: SE[c[2] as usize],
            skip: c[3] as usize,
            filters: FILTERS[c[4] as usize],
            layers: layer_choices(BASE[i].1)[c[5] as usize],
        }
    }

    /// One layer of block `block`: the first carries the stride and the input width.
    fn layer(block: usize, c: &BlockChoice, input: Shape, first: bool) -> Op {
        let (base, _, s) = BASE[block];
        let out = make_divisible(base as f64 * c.filters, 8);
        let stride = if first { s } else { 1 };
        let shortcut = match (SKIPS[c.skip], input.c == out) {
            ("identity", true) | ("pool", true) if stride == 1 => Shortcut::Identity,
            ("pool", true) => Shortcut::AvgPool,
            _ => Shortcut::None,
        };
        if OPS[c.op] == "conv" {
            let se = (c.se > 0.0).then(|| SeStyle::MnasNet.se(input.c, out, c.se));
            return conv_block(out, c.kernel, stride, Act::Relu, se, shortcut);
        }
        let expand = match OPS[c.op] {
            "dwconv" => 1.0,
            "mbconv3" => 3.0,
            _ => 6.0,
        };
        let args = BlockArgs {
            repeats: c.layers,
            kernel: c.kernel,
            stride: s,
            expand,
            input: input.c,
            output: out,
            se_ratio: c.se,
            skip: false,
            act: Act::Relu,
        };
        let mut op = args.layer(input, if first { 0 } else { 1 }, SeStyle::MnasNet);
        if let Op::MbConv(m) = &mut op {
            m.shortcut = shortcut;
        }
        op
    }

    fn build(resolution: u32, choice: impl Fn(usize) -> BlockChoice) -> Network {
        let mut b = NetBuilder::new(resolution);
        b.bn_eps(1e-3);
        b.push("stem", Op::conv_bn(32, 3, 2, Act::Relu));
        for bi in 0..BASE.len() {
            let c = choice(bi);
            for l in 0..c.layers {
                let op = Self::layer(bi, &c, b.current(), l == 0);
                b.push(format!("block{bi}.layer{l}"), op);
            }
        }
        b.push("head", Op::conv_bn(1280, 1, 1, Act::Relu));
        b.push("pool", Op::GlobalAvgPool);
        b.classifier(0.2, 1000);
        b.finish()
    }
}

impl SearchSpace for MnasNet {
    fn family(&self) -> SpaceFamily {
        SpaceFamily::MnasNet
    }
    fn name(&self) -> &str {
        "mnasnet"
    }
    fn description(&self) -> String {
        "MnasNet factorized hierarchical space over MobileNetV2: 7 blocks x {conv op, kernel, SE, skip op, filters x{0.75,1,1.25}, layers N-1..N+1}, 224x224".into()
    }
    fn genes(&self) -> &[Gene] {
        &self.genes
    }
    fn resolutions(&self) -> Vec<u32> {
        vec![224]
    }
    fn network_at(&self, g: &Genome, resolution: u32) -> Network {
        Self::build(resolution, |i| Self::choice(g, i))
    }
    fn to_json(&self, g: &Genome) -> Value {
        let blocks: Vec<Value> = (0..BASE.len())
            .map(|i| {
                let c = Self::choice(g, i);
                json!({"op": OPS[c.op], "kernel": c.kernel, "se": c.se, "skip": SKIPS[c.skip], "filters": c.filters, "layers": c.layers})
            })
            .collect();
        json!({ "blocks": blocks })
    }
    fn from_json(&self, v: &Value) -> Result<Genome, ArchError> {
        let m = json::object(v, &["blocks", "space"])?;
        let blocks = json::array(json::required(m, "blocks")?, "blocks", BASE.len())?;
        let mut genes = Vec::new();
        for (i, b) in blocks.iter().enumerate() {
            let f = |name: &str| format!("blocks[{i}].{name}");
            let o = json::object(b, &FIELDS).map_err(|e| match e {
                ArchError::Field { field, problem } => ArchError::field(format!("blocks[{i}].{field}"), problem),
                ArchError::Other(p) => ArchError::field(format!("blocks[{i}]"), p),
                e => e,
            })?;
            let get = |name: &str| json::required(o, name).map_err(|_| ArchError::field(f(name), "missing"));
            genes.push(json::choice(json::string(get("op")?, &f("op"))?, &OPS, &f("op"))?);
            genes.push(json::choice(json::uint(get("kernel")?, &f("kernel"))? as u32, &KERNELS, &f("kernel"))?);
            genes.push(json::choice(json::number(get("se")?, &f("se"))?, &SE, &f("se"))?);
            genes.push(json::choice(json::string(get("skip")?, &f("skip"))?, &SKIPS, &f("skip"))?);
            genes.push(json::choice(json::number(get("filters")?, &f("filters"))?, &FILTERS, &f("filters"))?);
            genes.push(json::choice(
                json::uint(get("layers")?, &f("layers"))? as u32,
                &layer_choices(BASE[i].1),
                &f("layers"),
            )?);
        }
        Ok(Genome(genes))
    }
    fn layer_table_at(&self, resolution: u32) -> Vec<Layer> {
        // A block's layers depend on its own choices and on the previous block's width.
        let mut layers = Vec::new();
        let mut spatial = resolution.div_ceil(2);
        for bi in 0..BASE.len() {
            let inputs: Vec<u32> = if bi == 0 {
                vec![32]
            } else {
                FILTERS.iter().map(|f| make_divisible(BASE[bi - 1].0 as f64 * f, 8)).collect()
            };
            for &cin in &inputs {
                for op in 0..OPS.len() {
                    for &kernel in &KERNELS {
                        for &se in &SE {
                            for skip in 0..SKIPS.len() {
                                for &filters in &FILTERS {
                                    let c = BlockChoice { op, kernel, se, skip, filters, layers: 2 };
                                    let mut b = NetBuilder::at(Shape::new(cin, spatial, spatial));
                                    for l in 0..2 {
                                        let op = Self::layer(bi, &c, b.current(), l == 0);
                                        b.push(format!("block{bi}.layer{l}"), op);
                                    }
                                    layers.extend(b.finish().layers);
                                }
                            }
                        }
                    }
                }
            }
            spatial = spatial.div_ceil(BASE[bi].2);
        }
        // Stem, head and classifier: the head's input width follows the last block's filters.
        let fixed = FILTERS.iter().flat_map(|&filters| {
            let net =
                Self::build(resolution, |_| BlockChoice { op: 0, kernel: 3, se: 0.0, skip: 0, filters, layers: 1 });
            net.layers.into_iter().filter(|l| !l.name.starts_with("block"))
        });
        crate::space::dedup_layers(layers.into_iter().chain(fixed))
    }
    fn extremes(&self) -> (Genome, Genome) {
        // Smallest: dwconv k3, no SE, x0.75, fewest layers. Largest: conv k5 + SE, x1.25, most layers.
        let small = (0..BASE.len()).flat_map(|_| [1u8, 0, 0, 0, 0, 0]).collect();
        let large =
            (0..BASE.len()).flat_map(|i| [0u8, 1, 1, 2, 2, (layer_choices(BASE[i].1).len() - 1) as u8]).collect();
        (Genome(small), Genome(large))
    }
}
