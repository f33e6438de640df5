//! FBNet's layer-wise space (Wu et al., CVPR 2019): 22 searchable layers x 9
//! candidate ops, with the paper/HW-NAS-Bench block (first 1x1 kept at e = 1,
//! both 1x1 convs grouped and a channel shuffle for g2). Two macro-architectures:
//! ImageNet 224 (`fbnet`) and HW-NAS-Bench's CIFAR-100 32x32 (`fbnet-cifar100`).
//! See `shared/reference/spaces.md` §5 and `shared/data/hw-nas-bench-fbnet/README.md`.

use crate::genome::{Gene, Genome};
use crate::ir::{Act, Layer, MbConv, NetBuilder, Network, Op};
use crate::json;
use crate::layout::{GeneLayout, Position};
use crate::{ArchError, GeneRole, SearchSpace, SpaceFamily};
use serde_json::{json, Value};

/// The candidate ops in HW-NAS-Bench's index order.
pub const OPS: [&str; 9] = ["k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip"];
/// (kernel, expansion, groups) of the eight block ops.
const BLOCKS: [(u32, u32, u32); 8] =
    [(3, 1, 1), (3, 1, 2), (3, 3, 1), (3, 6, 1), (5, 1, 1), (5, 1, 2), (5, 3, 1), (5, 6, 1)];
pub const LAYERS: usize = 22;
const IMAGENET_HEADS: [u32; 2] = [1984, 1504];

#[derive(Clone, Copy, PartialEq)]
pub enum Macro {
    ImageNet,
    Cifar100,
}

pub struct FbNet {
    variant: Macro,
    genes: Vec<Gene>,
}

struct MacroSpec {
    resolution: u32,
    stem_stride: u32,
    /// (out channels, layers, stride of the first layer)
    stages: [(u32, usize, u32); 7],
    classes: u32,
    dropout: f32,
}

impl FbNet {
    /// Whether `layer` of a member is one of the 22 searchable layers the `ops` genes
    /// choose (this space names them `stageN.layerM`; stem, head and classifier are fixed).
    pub fn is_searchable(layer: &Layer) -> bool {
        layer.name.starts_with("stage")
    }

    pub fn new(variant: Macro) -> Self {
        let mut genes: Vec<Gene> = (0..LAYERS).map(|i| Gene::new(format!("ops[{i}]"), OPS)).collect();
        if variant == Macro::ImageNet {
            // FBNet-A uses a 1504-wide head, B and C 1984 (the paper's Table).
            genes.push(Gene::new("head", IMAGENET_HEADS));
        }
        FbNet { variant, genes }
    }

    fn spec(&self) -> MacroSpec {
        match self.variant {
            Macro::ImageNet => MacroSpec {
                resolution: 224,
                stem_stride: 2,
                stages: [(16, 1, 1), (24, 4, 2), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1)],
                classes: 1000,
                dropout: 0.2,
            },
            Macro::Cifar100 => MacroSpec {
                resolution: 32,
                stem_stride: 1,
                stages: [(16, 1, 1), (24, 4, 1), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1)],
                classes: 100,
                dropout: 0.0,
            },
        }
    }

    /// The head widths a member can have: the `head` gene's choices on ImageNet, CIFAR-100's one.
    fn heads(&self) -> &'static [u32] {
        match self.variant {
            Macro::ImageNet => &IMAGENET_HEADS,
            Macro::Cifar100 => &[1504],
        }
    }

    fn head(&self, g: &Genome) -> u32 {
        let choice = if self.variant == Macro::ImageNet { g.0[LAYERS] as usize } else { 0 };
        self.heads()[choice]
    }

    /// The op of one layer: a block, or skip (identity, or 1x1 conv + BN + ReLU when shapes differ).
    pub fn layer_op(input: crate::ir::Shape, out: u32, stride: u32, op: usize) -> Op {
        match BLOCKS.get(op) {
            Some(&(kernel, e, groups)) => Op::MbConv(MbConv {
                out,
                mid: input.c * e,
                expand: true,
                kernel,
                stride,
                groups,
                shuffle: groups > 1,
                act: Act::Relu,
                se: None,
                shortcut: MbConv::residual_rule(input, out, stride, true),
            }),
            None if stride == 1 && input.c == out => Op::Identity,
            None => Op::conv_bn(out, 1, stride, Act::Relu),
        }
    }

    fn build(&self, resolution: u32, head: u32, op: impl Fn(usize) -> usize) -> Network {
        let spec = self.spec();
        let mut b = NetBuilder::new(resolution);
        b.push("stem", Op::conv_bn(16, 3, spec.stem_stride, Act::Relu));
        let mut i = 0;
        for (si, &(out, n, stride)) in spec.stages.iter().enumerate() {
            for p in 0..n {
                let s = if p == 0 { stride } else { 1 };
                b.push(format!("stage{}.layer{p}", si + 1), Self::layer_op(b.current(), out, s, op(i)));
                i += 1;
            }
        }
        b.push("head", Op::conv_bn(head, 1, 1, Act::Relu));
        b.push("pool", Op::GlobalAvgPool);
        b.classifier(spec.dropout, spec.classes);
        b.finish()
    }
}

impl SearchSpace for FbNet {
    fn family(&self) -> SpaceFamily {
        SpaceFamily::FbNet
    }
    /// `ops[0..22]`, then FBNet-A's `head` (ImageNet only).
    fn gene_role(&self, i: usize) -> GeneRole {
        if i < LAYERS {
            GeneRole::LayerOp
        } else {
            GeneRole::Head
        }
    }
    fn name(&self) -> &str {
        match self.variant {
            Macro::ImageNet => "fbnet",
            Macro::Cifar100 => "fbnet-cifar100",
        }
    }
    fn description(&self) -> String {
        match self.variant {
            Macro::ImageNet => "FBNet layer-wise space, ImageNet 224x224: 22 layers x 9 ops, head 1984 or 1504 (FBNet-A)".into(),
            Macro::Cifar100 => "FBNet layer-wise space, HW-NAS-Bench CIFAR-100 macro (32x32, stem stride 1, head 1504): 22 layers x 9 ops".into(),
        }
    }
    fn genes(&self) -> &[Gene] {
        &self.genes
    }
    fn resolutions(&self) -> Vec<u32> {
        vec![self.spec().resolution]
    }
    fn network_at(&self, g: &Genome, resolution: u32) -> Network {
        self.build(resolution, self.head(g), |i| g.0[i] as usize)
    }
    fn to_json(&self, g: &Genome) -> Value {
        let ops: Vec<&str> = g.0[..LAYERS].iter().map(|&i| OPS[i as usize]).collect();
        match self.variant {
            Macro::ImageNet => json!({"ops": ops, "head": self.head(g)}),
            Macro::Cifar100 => json!({"ops": ops}),
        }
    }
    fn from_json(&self, v: &Value) -> Result<Genome, ArchError> {
        let allowed: &[&str] = match self.variant {
            Macro::ImageNet => &["ops", "head", "space"],
            Macro::Cifar100 => &["ops", "space"],
        };
        let m = json::object(v, allowed)?;
        let ops = json::required(m, "ops")?;
        // Either a list of op names or HW-NAS-Bench's dash-joined string.
        let names: Vec<String> = match ops {
            Value::String(s) => s.split('-').map(str::to_string).collect(),
            _ => json::array(ops, "ops", LAYERS)?
                .iter()
                .enumerate()
                .map(|(i, x)| json::string(x, &format!("ops[{i}]")).map(str::to_string))
                .collect::<Result<_, _>>()?,
        };
        if names.len() != LAYERS {
            return Err(ArchError::field("ops", format!("expected {LAYERS} entries, got {}", names.len())));
        }
        let mut genes = names
            .iter()
            .enumerate()
            .map(|(i, n)| json::choice(n.as_str(), &OPS, &format!("ops[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        if self.variant == Macro::ImageNet {
            let head = match m.get("head") {
                Some(h) => json::uint(h, "head")? as u32,
                None => IMAGENET_HEADS[0],
            };
            genes.push(json::choice(head, &IMAGENET_HEADS, "head")?);
        }
        Ok(Genome(genes))
    }
    fn layer_table_at(&self, resolution: u32) -> Vec<Layer> {
        let nets = self.heads().iter().flat_map(|&h| (0..OPS.len()).map(move |o| (h, o)));
        crate::space::dedup_layers(nets.flat_map(|(h, o)| self.build(resolution, h, |_| o).layers))
    }
    /// Layer 1 + i is chosen by `ops[i]`; on ImageNet the head conv and the classifier by
    /// `head`; stem, pool (and dropout) are fixed.
    fn gene_layout(&self) -> Option<GeneLayout> {
        let spec = self.spec();
        let heads = self.heads();
        // by_op[o]: every layer runs op o, the first head; by_head[h]: every layer runs op 0,
        // head heads[h] (by_head[0] is by_op[0]). A searchable layer differs by op only, the
        // others by head only.
        let by_op: Vec<Network> = (0..OPS.len()).map(|o| self.build(spec.resolution, heads[0], |_| o)).collect();
        let other_heads: Vec<Network> = heads[1..].iter().map(|&h| self.build(spec.resolution, h, |_| 0)).collect();
        let by_head: Vec<&Network> = std::iter::once(&by_op[0]).chain(&other_heads).collect();
        let mut positions = Vec::new();
        let mut by_pos = Vec::new();
        for (i, layer) in by_op[0].layers.iter().enumerate() {
            if (1..=LAYERS).contains(&i) {
                positions.push(Position { genes: vec![(i - 1, OPS.len())], present_if: None });
                by_pos.push(by_op.iter().map(|n| n.layers[i].clone()).collect());
            } else if by_head.iter().any(|n| n.layers[i] != *layer) {
                positions.push(Position { genes: vec![(LAYERS, heads.len())], present_if: None });
                by_pos.push(by_head.iter().map(|n| n.layers[i].clone()).collect());
            } else {
                positions.push(Position { genes: Vec::new(), present_if: None });
                by_pos.push(vec![layer.clone()]);
            }
        }
        Some(GeneLayout { resolution_gene: None, resolutions: vec![spec.resolution], positions, layers: vec![by_pos] })
    }
    fn extremes(&self) -> (Genome, Genome) {
        let mut small = vec![8u8; LAYERS];
        let mut large = vec![7u8; LAYERS];
        if self.variant == Macro::ImageNet {
            small.push(1);
            large.push(0);
        }
        (Genome(small), Genome(large))
    }
}
