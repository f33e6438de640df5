//! Once-for-all supernets (mit-han-lab/once-for-all): OFA-MobileNetV3 (w1.0, w1.2)
//! and OFA-ProxylessNAS (w1.3), with elastic kernel, expansion, depth and resolution.
//! See `shared/reference/spaces.md` §1–2.

use crate::genome::{Gene, Genome};
use crate::ir::{Act, Conv, Gate, Layer, MbConv, NetBuilder, Network, Op, Shortcut, SqueezeExcite};
use crate::json;
use crate::layout::{GeneLayout, Position};
use crate::util::make_divisible;
use crate::{ArchError, GeneRole, OfaBase, SearchSpace, SpaceFamily};
use serde_json::{json, Value};

pub(crate) const KERNELS: [u32; 3] = [3, 5, 7];
pub(crate) const EXPANDS: [u32; 3] = [3, 4, 6];
const DEPTHS: [u32; 3] = [2, 3, 4];

struct Stage {
    stride: u32,
    act: Act,
    se: bool,
    out: u32,
    /// Blocks in the supernet; `None` depth gene means the depth is fixed to this.
    max_depth: usize,
    elastic_depth: bool,
}

pub struct OfaSpace {
    name: String,
    family: OfaBase,
    stem: u32,
    first_block: u32,
    stages: Vec<Stage>,
    /// MobileNetV3: final expand width then feature-mix width. Proxyless: feature mix.
    head: Vec<u32>,
    genes: Vec<Gene>,
    /// Block slots (sum of the stages' maximum depths), kept: the search loop asks per gene.
    slots: usize,
}

fn widths(base: &[u32], w: f64) -> Vec<u32> {
    base.iter().map(|&b| make_divisible(b as f64 * w, 8)).collect()
}

impl OfaSpace {
    pub fn mobilenet_v3(width: f64) -> Self {
        let c = widths(&[16, 16, 24, 40, 80, 112, 160, 960, 1280], width);
        // OFA keeps the last width at 1280 for multipliers <= 1.
        let last = if width > 1.0 { c[8] } else { 1280 };
        let spec = [
            (2, Act::Relu, false),
            (2, Act::Relu, true),
            (2, Act::HSwish, false),
            (1, Act::HSwish, true),
            (2, Act::HSwish, true),
        ];
        let stages = spec
            .iter()
            .enumerate()
            .map(|(i, &(stride, act, se))| Stage { stride, act, se, out: c[2 + i], max_depth: 4, elastic_depth: true })
            .collect();
        Self::new(format!("ofa-mbv3-w{width:.1}"), OfaBase::MobileNetV3, c[0], c[1], stages, vec![c[7], last])
    }

    pub fn proxyless(width: f64) -> Self {
        let c = widths(&[32, 16, 24, 40, 80, 96, 192, 320, 1280], width);
        let strides = [2, 2, 2, 1, 2, 1];
        let stages = (0..6)
            .map(|i| Stage {
                stride: strides[i],
                act: Act::Relu6,
                se: false,
                out: c[2 + i],
                max_depth: if i == 5 { 1 } else { 4 },
                elastic_depth: i != 5,
            })
            .collect();
        let last = if width > 1.0 { c[8] } else { 1280 };
        Self::new(format!("ofa-proxyless-w{width:.1}"), OfaBase::ProxylessNas, c[0], c[1], stages, vec![last])
    }

    fn new(name: String, family: OfaBase, stem: u32, first_block: u32, stages: Vec<Stage>, head: Vec<u32>) -> Self {
        let slots: usize = stages.iter().map(|s| s.max_depth).sum();
        let mut genes: Vec<Gene> = (0..slots).map(|i| Gene::new(format!("ks[{i}]"), KERNELS)).collect();
        genes.extend((0..slots).map(|i| Gene::new(format!("e[{i}]"), EXPANDS)));
        for (i, s) in stages.iter().enumerate() {
            if s.elastic_depth {
                genes.push(Gene::new(format!("d[{i}]"), DEPTHS));
            }
        }
        genes.push(Gene::new("r", resolutions()));
        OfaSpace { name, family, stem, first_block, stages, head, genes, slots }
    }

    fn slots(&self) -> usize {
        self.slots
    }

    /// Active depth of each stage.
    fn depths(&self, g: &Genome) -> Vec<usize> {
        self.stage_depths(g).collect()
    }

    /// Active depth of each stage, without allocating (the search's hot path reads it).
    fn stage_depths<'a>(&'a self, g: &'a Genome) -> impl Iterator<Item = usize> + 'a {
        let mut d_gene = 2 * self.slots();
        self.stages.iter().map(move |s| {
            if s.elastic_depth {
                d_gene += 1;
                DEPTHS[g.0[d_gene - 1] as usize] as usize
            } else {
                s.max_depth
            }
        })
    }

    /// (stage, position, slot) of every block slot; slot = running index over stages.
    fn slot_positions(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        self.stages
            .iter()
            .enumerate()
            .flat_map(|(si, s)| (0..s.max_depth).map(move |p| (si, p)))
            .enumerate()
            .map(|(slot, (si, p))| (si, p, slot))
    }

    fn block(&self, stage: &Stage, input: crate::ir::Shape, first: bool, kernel: u32, expand: u32) -> Op {
        let stride = if first { stage.stride } else { 1 };
        let mid = make_divisible((input.c * expand) as f64, 8);
        let se = stage.se.then(|| SqueezeExcite {
            mid: make_divisible((mid / 4) as f64, 8),
            act: Act::Relu,
            gate: Gate::HSigmoid,
        });
        Op::MbConv(MbConv {
            out: stage.out,
            mid,
            expand: true,
            kernel,
            stride,
            groups: 1,
            shuffle: false,
            act: stage.act,
            se,
            shortcut: MbConv::residual_rule(input, stage.out, stride, true),
        })
    }

    /// Builds the network; `choice(slot)` gives (kernel, expand) of active slots.
    fn build(&self, depths: &[usize], resolution: u32, choice: impl Fn(usize) -> (u32, u32)) -> Network {
        let (stem_act, first_act) = match self.family {
            OfaBase::MobileNetV3 => (Act::HSwish, Act::Relu),
            OfaBase::ProxylessNas => (Act::Relu6, Act::Relu6),
        };
        let mut b = NetBuilder::new(resolution);
        if self.family == OfaBase::ProxylessNas {
            b.bn_eps(1e-3);
        }
        b.push("stem", Op::conv_bn(self.stem, 3, 2, stem_act));
        let input = b.current();
        b.push(
            "block0",
            Op::MbConv(MbConv {
                out: self.first_block,
                mid: input.c,
                expand: false,
                kernel: 3,
                stride: 1,
                groups: 1,
                shuffle: false,
                act: first_act,
                se: None,
                // OFA-MBv3 keeps the identity shortcut of its 16 -> 16 first block; Proxyless has none.
                shortcut: MbConv::residual_rule(input, self.first_block, 1, self.family == OfaBase::MobileNetV3),
            }),
        );
        for (si, p, slot) in self.slot_positions() {
            if p < depths[si] {
                let (k, e) = choice(slot);
                let op = self.block(&self.stages[si], b.current(), p == 0, k, e);
                b.push(format!("stage{}.block{p}", si + 1), op);
            }
        }
        match self.family {
            OfaBase::MobileNetV3 => {
                b.push("final_expand", Op::conv_bn(self.head[0], 1, 1, Act::HSwish));
                b.push("pool", Op::GlobalAvgPool);
                b.push(
                    "feature_mix",
                    Op::Conv(Conv {
                        out: self.head[1],
                        kernel: 1,
                        stride: 1,
                        groups: 1,
                        bias: false,
                        bn: false,
                        act: Act::HSwish,
                        se: None,
                        shortcut: Shortcut::None,
                    }),
                );
            }
            OfaBase::ProxylessNas => {
                b.push("feature_mix", Op::conv_bn(self.head[0], 1, 1, Act::Relu6));
                b.push("pool", Op::GlobalAvgPool);
            }
        }
        b.classifier(0.1, 1000);
        b.finish()
    }

    fn is_active(&self, depths: &[usize], slot: usize) -> bool {
        self.slot_positions().any(|(si, p, s)| s == slot && p < depths[si])
    }
}

/// 128..=224 in steps of 4 (the paper's 25 sizes).
fn resolutions() -> Vec<u32> {
    (128..=224).step_by(4).collect()
}

impl SearchSpace for OfaSpace {
    fn name(&self) -> &str {
        &self.name
    }

    fn family(&self) -> SpaceFamily {
        SpaceFamily::Ofa(self.family)
    }

    /// `ks[0..slots]`, `e[0..slots]`, the elastic stages' `d[i]`, then `r`.
    fn gene_role(&self, i: usize) -> GeneRole {
        if i < self.slots {
            GeneRole::Kernel
        } else if i < 2 * self.slots {
            GeneRole::Expand
        } else if i + 1 < self.genes.len() {
            GeneRole::Depth
        } else {
            GeneRole::Resolution
        }
    }

    fn description(&self) -> String {
        let family = match self.family {
            OfaBase::MobileNetV3 => "OFA-MobileNetV3",
            OfaBase::ProxylessNas => "OFA-ProxylessNAS",
        };
        format!(
            "{family} supernet: per-block kernel {{3,5,7}} and expansion {{3,4,6}} on {} slots, per-stage depth {{2,3,4}}{}, resolution 128-224 step 4",
            self.slots(),
            if self.family == OfaBase::ProxylessNas { " (last stage fixed at 1)" } else { "" }
        )
    }

    fn genes(&self) -> &[Gene] {
        &self.genes
    }

    fn canonicalize(&self, g: &mut Genome) {
        let used = self.active_genes(g);
        for (v, used) in g.0.iter_mut().zip(used) {
            if !used {
                *v = 0;
            }
        }
    }

    fn active_genes(&self, g: &Genome) -> Vec<bool> {
        // Called for every proposal of a search: one pass, one allocation.
        let slots = self.slots();
        let mut used = vec![true; g.0.len()];
        let mut first = 0;
        for (s, depth) in self.stages.iter().zip(self.stage_depths(g)) {
            for slot in first + depth..first + s.max_depth {
                used[slot] = false;
                used[slots + slot] = false;
            }
            first += s.max_depth;
        }
        used
    }

    /// A slot's expansion mutates with its kernel (OFA's `mutate_arch`).
    fn gene_group(&self, i: usize) -> usize {
        let slots = self.slots();
        if (slots..2 * slots).contains(&i) {
            i - slots
        } else {
            i
        }
    }

    fn size(&self) -> f64 {
        let per_stage = |s: &Stage| -> f64 {
            if s.elastic_depth {
                DEPTHS.iter().map(|&d| 9f64.powi(d as i32)).sum()
            } else {
                9f64.powi(s.max_depth as i32)
            }
        };
        self.stages.iter().map(per_stage).product::<f64>() * resolutions().len() as f64
    }

    fn resolutions(&self) -> Vec<u32> {
        resolutions()
    }

    fn resolution(&self, g: &Genome) -> u32 {
        resolutions()[*g.0.last().expect("r gene") as usize]
    }

    fn network_at(&self, g: &Genome, resolution: u32) -> Network {
        let slots = self.slots();
        let choice = |s: usize| (KERNELS[g.0[s] as usize], EXPANDS[g.0[slots + s] as usize]);
        self.build(&self.depths(g), resolution, choice)
    }

    fn to_json(&self, g: &Genome) -> Value {
        let depths = self.depths(g);
        let slots = self.slots();
        let active = |slot| self.is_active(&depths, slot);
        let ks: Vec<u32> = (0..slots).map(|s| if active(s) { KERNELS[g.0[s] as usize] } else { 0 }).collect();
        let e: Vec<u32> = (0..slots).map(|s| if active(s) { EXPANDS[g.0[slots + s] as usize] } else { 0 }).collect();
        json!({"ks": ks, "e": e, "d": depths, "r": [self.resolution(g)]})
    }

    fn from_json(&self, v: &Value) -> Result<Genome, ArchError> {
        let m = json::object(v, &["ks", "e", "d", "r", "image_size", "wid", "space"])?;
        if let Some(w) = m.get("wid") {
            if !w.is_null() {
                return Err(ArchError::field("wid", "width is not elastic in this space (expected null)"));
            }
        }
        let slots = self.slots();
        let d = json::array(json::required(m, "d")?, "d", self.stages.len())?;
        let mut depths = Vec::new();
        let mut d_genes = Vec::new();
        for (i, (s, dv)) in self.stages.iter().zip(d).enumerate() {
            let field = format!("d[{i}]");
            let depth = json::uint(dv, &field)? as u32;
            if s.elastic_depth {
                d_genes.push(json::choice(depth, &DEPTHS, &field)?);
            } else if depth as usize != s.max_depth {
                return Err(ArchError::field(
                    field,
                    format!("{depth} is not {} (this stage's depth is fixed)", s.max_depth),
                ));
            }
            depths.push(depth as usize);
        }
        let mut genes = vec![0u8; 2 * slots];
        for (name, choices, offset) in [("ks", &KERNELS, 0), ("e", &EXPANDS, slots)] {
            let a = json::array(json::required(m, name)?, name, slots)?;
            for (slot, x) in a.iter().enumerate() {
                if self.is_active(&depths, slot) {
                    let field = format!("{name}[{slot}]");
                    genes[offset + slot] = json::choice(json::uint(x, &field)? as u32, choices, &field)?;
                }
            }
        }
        genes.extend(d_genes);
        let r = match (m.get("r"), m.get("image_size")) {
            (Some(_), Some(_)) => return Err(ArchError::field("image_size", "give either r or image_size, not both")),
            (Some(r @ Value::Array(_)), None) => json::uint(&json::array(r, "r", 1)?[0], "r[0]")?,
            (Some(r), None) => json::uint(r, "r")?,
            (None, Some(s)) => json::uint(s, "image_size")?,
            (None, None) => 224,
        };
        genes.push(json::choice(r as u32, &resolutions(), "r")?);
        let mut g = Genome(genes);
        self.canonicalize(&mut g);
        Ok(g)
    }

    fn layer_table_at(&self, resolution: u32) -> Vec<Layer> {
        let full: Vec<usize> = self.stages.iter().map(|s| s.max_depth).collect();
        let mut layers = Vec::new();
        for &k in &KERNELS {
            for &e in &EXPANDS {
                layers.extend(self.build(&full, resolution, |_| (k, e)).layers);
            }
        }
        crate::space::dedup_layers(layers)
    }

    fn resolution_gene(&self) -> Option<usize> {
        Some(self.genes.len() - 1)
    }

    /// Positions: stem, first block, the block slots (genes `ks[i]`, `e[i]`; slot p ≥ 2 of an
    /// elastic stage present only at depth > p), the head. A slot's layer depends only on the
    /// resolution, its position and its (k, e): its input channels are the previous stage's
    /// output and its stride is the stage's on the first slot, whatever the depths.
    fn gene_layout(&self) -> Option<GeneLayout> {
        let slots = self.slots();
        let full: Vec<usize> = self.stages.iter().map(|s| s.max_depth).collect();
        let fixed = || Position { genes: Vec::new(), present_if: None };
        // Stem and first block.
        let mut positions = vec![fixed(), fixed()];
        let mut d_gene = 2 * slots;
        for s in &self.stages {
            for p in 0..s.max_depth {
                let present_if = match DEPTHS.iter().position(|&d| d as usize > p) {
                    Some(min) if s.elastic_depth && min > 0 => Some((d_gene, min as u8)),
                    _ => None,
                };
                let slot = positions.len() - 2;
                let genes = vec![(slot, KERNELS.len()), (slots + slot, EXPANDS.len())];
                positions.push(Position { genes, present_if });
            }
            d_gene += s.elastic_depth as usize;
        }
        let layers: Vec<Vec<Vec<Layer>>> = resolutions()
            .into_iter()
            .map(|r| {
                // Every slot active and set to (k, e): slot i's candidate (k, e) is layer 2 + i.
                let nets: Vec<Network> = KERNELS
                    .iter()
                    .flat_map(|&k| EXPANDS.iter().map(move |&e| (k, e)))
                    .map(|(k, e)| self.build(&full, r, |_| (k, e)))
                    .collect();
                let mut by_pos: Vec<Vec<Layer>> = nets[0].layers[..2].iter().map(|l| vec![l.clone()]).collect();
                by_pos.extend((0..slots).map(|i| nets.iter().map(|n| n.layers[2 + i].clone()).collect()));
                by_pos.extend(nets[0].layers[2 + slots..].iter().map(|l| vec![l.clone()]));
                by_pos
            })
            .collect();
        // The head's fixed layers.
        positions.extend((positions.len()..layers[0].len()).map(|_| fixed()));
        Some(GeneLayout { resolution_gene: self.resolution_gene(), resolutions: resolutions(), positions, layers })
    }

    fn extremes(&self) -> (Genome, Genome) {
        // Index 0 of every gene: k3, e3, d2 and the lowest resolution.
        let mut small = Genome(vec![0; self.genes.len()]);
        self.canonicalize(&mut small);
        let mut large = Genome(self.genes.iter().map(|g| (g.cardinality() - 1) as u8).collect());
        self.canonicalize(&mut large);
        (small, large)
    }
}
