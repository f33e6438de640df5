//! Single-Path NAS (dstamoulis/single-path-nas): the MobileNetV2-like supernet of
//! 22 MBConv layers whose 20 searchable layers pick k{3,5} x e{3,6}, and skip on the
//! 15 non-first layers of a stage. See `shared/reference/spaces.md` §3.

use crate::genome::{Gene, Genome};
use crate::ir::{Act, Layer, MbConv, NetBuilder, Network, Op, Shape};
use crate::json;
use crate::{ArchError, GeneRole, SearchSpace, SpaceFamily};
use serde_json::{json, Value};

/// The searchable ops, in the Pixel 1 table's option order (k outer, e inner), then skip.
pub const OPS: [&str; 5] = ["k3_e3", "k3_e6", "k5_e3", "k5_e6", "skip"];
/// (kernel, expansion) of the four non-skip ops.
pub const KE: [(u32, u32); 4] = [(3, 3), (3, 6), (5, 3), (5, 6)];
/// Stages of the searchable part: (out channels, stride of first layer), four layers each.
const STAGES: [(u32, u32); 5] = [(24, 2), (40, 2), (80, 2), (96, 1), (192, 2)];
pub const SEARCHABLE: usize = 20;

pub struct SinglePath {
    genes: Vec<Gene>,
}

impl Default for SinglePath {
    fn default() -> Self {
        let genes = (0..SEARCHABLE)
            .map(|i| {
                let n = if Self::skippable(i) { 5 } else { 4 };
                Gene::new(format!("ops[{i}]"), &OPS[..n])
            })
            .collect();
        SinglePath { genes }
    }
}

impl SinglePath {
    /// Searchable layer `i` (0-based, = supernet layer i + 1) may be skipped unless it opens a stage.
    pub fn skippable(i: usize) -> bool {
        !i.is_multiple_of(4)
    }

    fn mbconv(input: Shape, out: u32, kernel: u32, expand: u32, stride: u32, skip_allowed: bool) -> Op {
        Op::MbConv(MbConv {
            out,
            mid: input.c * expand,
            expand: expand != 1,
            kernel,
            stride,
            groups: 1,
            shuffle: false,
            act: Act::Relu,
            se: None,
            shortcut: MbConv::residual_rule(input, out, stride, skip_allowed),
        })
    }

    /// The network with `op(i)` an index into [`OPS`] for searchable layer i.
    fn build(resolution: u32, op: impl Fn(usize) -> usize) -> Network {
        let mut b = NetBuilder::new(resolution);
        b.bn_eps(1e-3);
        b.push("stem", Op::conv_bn(32, 3, 2, Act::Relu));
        b.push("layer0", Self::mbconv(b.current(), 16, 3, 1, 1, false));
        for i in 0..SEARCHABLE {
            let (out, stride) = STAGES[i / 4];
            let stride = if i % 4 == 0 { stride } else { 1 };
            if let Some(&(k, e)) = KE.get(op(i)) {
                b.push(format!("layer{}", i + 1), Self::mbconv(b.current(), out, k, e, stride, true));
            }
        }
        b.push("layer21", Self::mbconv(b.current(), 320, 3, 6, 1, false));
        b.push("head", Op::conv_bn(1280, 1, 1, Act::Relu));
        b.push("pool", Op::GlobalAvgPool);
        b.classifier(0.2, 1000);
        b.finish()
    }
}

impl SearchSpace for SinglePath {
    fn family(&self) -> SpaceFamily {
        SpaceFamily::SinglePath
    }
    fn gene_role(&self, _i: usize) -> GeneRole {
        GeneRole::LayerOp
    }
    fn name(&self) -> &str {
        "singlepath"
    }
    fn description(&self) -> String {
        "Single-Path NAS MobileNetV2 superkernel space: 20 layers x {k3,k5} x {e3,e6}, skip on the 15 non-first layers of a stage, 224x224".into()
    }
    fn genes(&self) -> &[Gene] {
        &self.genes
    }
    fn resolutions(&self) -> Vec<u32> {
        vec![224]
    }
    fn network_at(&self, g: &Genome, resolution: u32) -> Network {
        Self::build(resolution, |i| g.0[i] as usize)
    }
    fn to_json(&self, g: &Genome) -> Value {
        json!({"ops": g.0.iter().map(|&i| OPS[i as usize]).collect::<Vec<_>>()})
    }
    fn from_json(&self, v: &Value) -> Result<Genome, ArchError> {
        let m = json::object(v, &["ops", "space"])?;
        let ops = json::array(json::required(m, "ops")?, "ops", SEARCHABLE)?;
        let genes = ops
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let field = format!("ops[{i}]");
                let name = json::string(x, &field)?;
                let allowed = if Self::skippable(i) { &OPS[..] } else { &OPS[..4] };
                json::choice(name, allowed, &field).map_err(|e| match (name, Self::skippable(i)) {
                    ("skip", false) => ArchError::field(field, "skip is not allowed on the first layer of a stage"),
                    _ => e,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Genome(genes))
    }
    fn layer_table_at(&self, resolution: u32) -> Vec<Layer> {
        crate::space::dedup_layers((0..KE.len()).flat_map(|o| Self::build(resolution, |_| o).layers))
    }
    fn extremes(&self) -> (Genome, Genome) {
        let small = Genome((0..SEARCHABLE).map(|i| if Self::skippable(i) { 4 } else { 0 }).collect());
        (small, Genome(vec![3; SEARCHABLE]))
    }
}
