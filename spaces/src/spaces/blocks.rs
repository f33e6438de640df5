//! Free-form networks in MnasNet block-string notation (tensorflow/tpu), for
//! published networks that no search space expresses exactly (MnasNet-A1/B1 with
//! their explicit widths, MobileNetV3-Large). Extensions to the notation: a
//! fractional `e` (mid = round(i * e), as MobileNetV3's 200 and 184), and `_hs`
//! for h-swish (default ReLU).

use crate::ir::{Act, Conv, Gate, Linear, MbConv, NetBuilder, Network, Op, Shape, Shortcut, SqueezeExcite};
use crate::json;
use crate::util::make_divisible;
use crate::ArchError;
use serde_json::Value;

/// How the SE reduce width is derived.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SeStyle {
    /// tensorflow/tpu MnasNet: max(1, int(block input * ratio)), sigmoid gate.
    MnasNet,
    /// MobileNetV3/OFA: make_divisible(mid * ratio, 8), hard-sigmoid gate.
    MobileNetV3,
}

impl SeStyle {
    pub fn se(self, block_input: u32, mid: u32, ratio: f64) -> SqueezeExcite {
        match self {
            SeStyle::MnasNet => {
                SqueezeExcite { mid: ((block_input as f64 * ratio) as u32).max(1), act: Act::Relu, gate: Gate::Sigmoid }
            }
            SeStyle::MobileNetV3 => {
                SqueezeExcite { mid: make_divisible(mid as f64 * ratio, 8), act: Act::Relu, gate: Gate::HSigmoid }
            }
        }
    }
}

/// One parsed block string: `r{repeats}_k{kernel}_s{s}{s}_e{expand}_i{in}_o{out}[_se{ratio}][_noskip][_hs]`.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockArgs {
    pub repeats: u32,
    pub kernel: u32,
    pub stride: u32,
    pub expand: f64,
    pub input: u32,
    pub output: u32,
    pub se_ratio: f64,
    pub skip: bool,
    pub act: Act,
}

impl BlockArgs {
    pub fn parse(s: &str, field: &str) -> Result<Self, ArchError> {
        let bad = |why: String| ArchError::field(field, format!("block string `{s}`: {why}"));
        let mut a = BlockArgs {
            repeats: 0,
            kernel: 0,
            stride: 0,
            expand: 0.0,
            input: 0,
            output: 0,
            se_ratio: 0.0,
            skip: true,
            act: Act::Relu,
        };
        let num =
            |v: &str, what: &str| -> Result<u32, ArchError> { v.parse().map_err(|_| bad(format!("bad {what} `{v}`"))) };
        for part in s.split('_') {
            match part {
                "noskip" => a.skip = false,
                "hs" => a.act = Act::HSwish,
                p if p.starts_with("se") => {
                    a.se_ratio = p[2..].parse().map_err(|_| bad(format!("bad SE ratio `{p}`")))?
                }
                p if p.starts_with('r') => a.repeats = num(&p[1..], "repeats")?,
                p if p.starts_with('k') => a.kernel = num(&p[1..], "kernel")?,
                p if p.starts_with('s') => {
                    let d = &p[1..];
                    if d.len() != 2 || d[..1] != d[1..] {
                        return Err(bad(format!("stride `{p}` must repeat one digit, e.g. s22")));
                    }
                    a.stride = num(&d[..1], "stride")?;
                }
                p if p.starts_with('e') => {
                    a.expand = p[1..].parse().map_err(|_| bad(format!("bad expansion `{p}`")))?
                }
                p if p.starts_with('i') => a.input = num(&p[1..], "input width")?,
                p if p.starts_with('o') => a.output = num(&p[1..], "output width")?,
                p => return Err(bad(format!("unknown part `{p}`"))),
            }
        }
        for (v, what) in [(a.repeats, "r"), (a.kernel, "k"), (a.stride, "s"), (a.input, "i"), (a.output, "o")] {
            if v == 0 {
                return Err(bad(format!("missing or zero `{what}`")));
            }
        }
        if a.kernel.is_multiple_of(2) {
            return Err(bad(format!("kernel {} must be odd", a.kernel)));
        }
        if a.expand < 1.0 {
            return Err(bad("missing `e` or expansion below 1".into()));
        }
        if !(0.0..=1.0).contains(&a.se_ratio) {
            return Err(bad(format!("SE ratio {} outside [0, 1]", a.se_ratio)));
        }
        Ok(a)
    }

    /// The MBConv of layer `index` (0 = first, carrying the stride and the input width).
    pub fn layer(&self, input: Shape, index: u32, style: SeStyle) -> Op {
        let stride = if index == 0 { self.stride } else { 1 };
        let mid = (input.c as f64 * self.expand).round() as u32;
        Op::MbConv(MbConv {
            out: self.output,
            mid,
            expand: mid != input.c,
            kernel: self.kernel,
            stride,
            groups: 1,
            shuffle: false,
            act: self.act,
            se: (self.se_ratio > 0.0).then(|| style.se(input.c, mid, self.se_ratio)),
            shortcut: MbConv::residual_rule(input, self.output, stride, self.skip),
        })
    }
}

/// A free-form network: stem conv, block strings, head conv, optional pre-logits FC, classifier.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockNet {
    pub stem: u32,
    pub stem_act: Act,
    pub blocks: Vec<BlockArgs>,
    pub head: u32,
    pub head_act: Act,
    /// MobileNetV3's 960 -> 1280 FC (bias, no BN) after pooling.
    pub fc: Option<u32>,
    pub se_style: SeStyle,
    pub classes: u32,
    pub dropout: f32,
    pub resolution: u32,
}

fn act(v: &Value, field: &str) -> Result<Act, ArchError> {
    match json::string(v, field)? {
        "relu" => Ok(Act::Relu),
        "relu6" => Ok(Act::Relu6),
        "hswish" => Ok(Act::HSwish),
        other => Err(ArchError::field(field, format!("{other} is not one of relu, relu6, hswish"))),
    }
}

impl BlockNet {
    pub fn from_json(v: &Value) -> Result<Self, ArchError> {
        let keys = [
            "stem",
            "stem_act",
            "blocks",
            "head",
            "head_act",
            "fc",
            "se_style",
            "num_classes",
            "dropout",
            "resolution",
            "space",
        ];
        let m = json::object(v, &keys)?;
        let blocks = json::required(m, "blocks")?
            .as_array()
            .ok_or_else(|| ArchError::field("blocks", "expected an array of block strings"))?
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let f = format!("blocks[{i}]");
                BlockArgs::parse(json::string(b, &f)?, &f)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if blocks.is_empty() {
            return Err(ArchError::field("blocks", "needs at least one block"));
        }
        let uint_or = |k: &str, d: u32| -> Result<u32, ArchError> {
            m.get(k).map(|v| json::uint(v, k).map(|x| x as u32)).unwrap_or(Ok(d))
        };
        let act_or = |k: &str| m.get(k).map(|v| act(v, k)).unwrap_or(Ok(Act::Relu));
        let net = BlockNet {
            stem: uint_or("stem", 32)?,
            stem_act: act_or("stem_act")?,
            blocks,
            head: uint_or("head", 1280)?,
            head_act: act_or("head_act")?,
            fc: m.get("fc").filter(|v| !v.is_null()).map(|v| json::uint(v, "fc").map(|x| x as u32)).transpose()?,
            se_style: match m.get("se_style").map(|v| json::string(v, "se_style")).transpose()? {
                None | Some("mnasnet") => SeStyle::MnasNet,
                Some("mobilenetv3") => SeStyle::MobileNetV3,
                Some(o) => return Err(ArchError::field("se_style", format!("{o} is not one of mnasnet, mobilenetv3"))),
            },
            classes: uint_or("num_classes", 1000)?,
            dropout: m.get("dropout").map(|v| json::number(v, "dropout")).transpose()?.unwrap_or(0.2) as f32,
            resolution: uint_or("resolution", 224)?,
        };
        // Widths must chain: each block's input is the previous block's output.
        let mut width = net.stem;
        for (i, b) in net.blocks.iter().enumerate() {
            if b.input != width {
                return Err(ArchError::field(
                    format!("blocks[{i}]"),
                    format!("input width i{} does not follow the previous output {width}", b.input),
                ));
            }
            width = b.output;
        }
        for (k, v) in
            [("stem", net.stem), ("head", net.head), ("num_classes", net.classes), ("resolution", net.resolution)]
        {
            if v == 0 {
                return Err(ArchError::field(k, "must be positive"));
            }
        }
        Ok(net)
    }

    pub fn network_at(&self, resolution: u32) -> Network {
        let mut b = NetBuilder::new(resolution);
        b.bn_eps(1e-3);
        b.push("stem", Op::conv_bn(self.stem, 3, 2, self.stem_act));
        for (bi, args) in self.blocks.iter().enumerate() {
            for r in 0..args.repeats {
                let op = args.layer(b.current(), r, self.se_style);
                b.push(format!("block{bi}.layer{r}"), op);
            }
        }
        b.push("head", Op::conv_bn(self.head, 1, 1, self.head_act));
        b.push("pool", Op::GlobalAvgPool);
        if let Some(fc) = self.fc {
            b.push("fc", Op::Linear(Linear { out: fc, bias: true, act: self.head_act }));
        }
        b.classifier(self.dropout, self.classes);
        b.finish()
    }
}

/// A plain k x k conv block (MnasNet's "conv" op) with optional SE and shortcut.
pub fn conv_block(out: u32, kernel: u32, stride: u32, act: Act, se: Option<SqueezeExcite>, shortcut: Shortcut) -> Op {
    Op::Conv(Conv { out, kernel, stride, groups: 1, bias: false, bn: true, act, se, shortcut })
}

impl std::fmt::Display for BlockArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "r{}_k{}_s{}{}_e{}_i{}_o{}",
            self.repeats, self.kernel, self.stride, self.stride, self.expand, self.input, self.output
        )?;
        if self.se_ratio > 0.0 {
            write!(f, "_se{}", self.se_ratio)?;
        }
        if !self.skip {
            write!(f, "_noskip")?;
        }
        if self.act == Act::HSwish {
            write!(f, "_hs")?;
        }
        Ok(())
    }
}

impl BlockNet {
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "stem": self.stem,
            "stem_act": self.stem_act.name(),
            "blocks": self.blocks.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
            "head": self.head,
            "head_act": self.head_act.name(),
            "fc": self.fc,
            "se_style": match self.se_style { SeStyle::MnasNet => "mnasnet", SeStyle::MobileNetV3 => "mobilenetv3" },
            "num_classes": self.classes,
            "dropout": self.dropout,
            "resolution": self.resolution,
        })
    }
}
