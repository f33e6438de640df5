//! A layer's identity: what it computes on which shapes, without its name or its place
//! in the network. Lookup tables, per-layer caches, the profiler's single-layer models
//! and the journal are all keyed on it. Its `Display` is the OFA-style key string
//! (`name-input:HxWxC-output:HxWxC-field:value…`), and the key string parses back, so a
//! saved table maps to identities without rebuilding any space's layers.

use super::{Act, Conv, Gate, Layer, Linear, MbConv, Op, Shape, Shortcut, SqueezeExcite};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// A layer minus its name: two layers with equal ids compute the same function
/// shape-for-shape. Hashes three packed words, so a table probe builds no string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerId {
    pub input: Shape,
    pub output: Shape,
    pub op: OpId,
}

/// What a layer computes, as far as its cost goes: [`Op`] without the dropout rate (which
/// no inference kernel sees).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpId {
    Conv(Conv),
    MbConv(MbConv),
    Identity,
    GlobalAvgPool,
    Dropout,
    Linear(Linear),
}

/// The shape in one word (fields overlap only beyond 2^20, where equal hashes are still correct).
fn pack_shape(s: Shape) -> u64 {
    s.c as u64 | (s.h as u64) << 20 | (s.w as u64) << 40
}

fn pack_se(se: Option<SqueezeExcite>) -> u64 {
    se.map_or(0, |s| 1 | (s.mid as u64) << 1 | (s.act as u64) << 21 | (s.gate as u64) << 23)
}

/// Three words per layer instead of one hasher call per field: layer-keyed tables are probed
/// for every layer of every network a search prices. Equal ids pack equally, so this agrees
/// with the derived `Eq`; distinct ids may share words (a collision, never a wrong answer).
impl Hash for LayerId {
    fn hash<H: Hasher>(&self, h: &mut H) {
        let op = match self.op {
            OpId::Conv(c) => {
                1 | (c.kernel as u64) << 3
                    | (c.stride as u64) << 8
                    | (c.groups as u64) << 12
                    | (c.bias as u64) << 24
                    | (c.bn as u64) << 25
                    | (c.act as u64) << 26
                    | (c.shortcut as u64) << 28
                    | pack_se(c.se) << 30
            }
            OpId::MbConv(m) => {
                2 | (m.kernel as u64) << 3
                    | (m.stride as u64) << 8
                    | (m.groups as u64) << 12
                    | (m.expand as u64) << 24
                    | (m.shuffle as u64) << 25
                    | (m.act as u64) << 26
                    | (m.shortcut as u64) << 28
                    | pack_se(m.se) << 30
                    | (m.mid as u64) << 44
            }
            OpId::Identity => 3,
            OpId::GlobalAvgPool => 4,
            OpId::Dropout => 5,
            OpId::Linear(l) => 6 | (l.bias as u64) << 3 | (l.act as u64) << 4,
        };
        h.write_u64(pack_shape(self.input));
        h.write_u64(pack_shape(self.output));
        h.write_u64(op);
    }
}

impl Layer {
    /// The layer's identity (its name left out).
    pub fn id(&self) -> LayerId {
        let op = match self.op {
            Op::Conv(c) => OpId::Conv(c),
            Op::MbConv(m) => OpId::MbConv(m),
            Op::Identity => OpId::Identity,
            Op::GlobalAvgPool => OpId::GlobalAvgPool,
            Op::Dropout { .. } => OpId::Dropout,
            Op::Linear(l) => OpId::Linear(l),
        };
        LayerId { input: self.input, output: self.output, op }
    }

    /// The lookup-table key: [`LayerId`]'s string form. Two layers have the same key iff
    /// they compute the same function shape-for-shape.
    pub fn key(&self) -> String {
        self.id().to_string()
    }

    /// Whether a latency lookup table needs an entry for this layer (dropout never runs at inference).
    pub fn is_timed(&self) -> bool {
        !matches!(self.op, Op::Dropout { .. })
    }
}

impl LayerId {
    /// A layer with this identity called `name` (a dropout gets rate 0: the id does not keep it).
    pub fn layer(&self, name: impl Into<String>) -> Layer {
        let op = match self.op {
            OpId::Conv(c) => Op::Conv(c),
            OpId::MbConv(m) => Op::MbConv(m),
            OpId::Identity => Op::Identity,
            OpId::GlobalAvgPool => Op::GlobalAvgPool,
            OpId::Dropout => Op::Dropout { p: 0.0 },
            OpId::Linear(l) => Op::Linear(l),
        };
        Layer { name: name.into(), input: self.input, output: self.output, op }
    }
}

fn act_name(a: Act) -> &'static str {
    a.name()
}

fn gate_name(g: Gate) -> &'static str {
    match g {
        Gate::Sigmoid => "sigmoid",
        Gate::HSigmoid => "hsigmoid",
    }
}

fn shortcut_name(s: Shortcut) -> &'static str {
    match s {
        Shortcut::None => "none",
        Shortcut::Identity => "identity",
        Shortcut::AvgPool => "avgpool",
    }
}

struct SeField(Option<SqueezeExcite>);

impl fmt::Display for SeField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("se:0"),
            Some(s) => write!(f, "se:{}:{}:{}", s.mid, act_name(s.act), gate_name(s.gate)),
        }
    }
}

impl fmt::Display for LayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (i, o) = (self.input, self.output);
        match self.op {
            OpId::Conv(c) => write!(
                f,
                "conv-input:{i}-output:{o}-kernel:{}-stride:{}-groups:{}-bias:{}-bn:{}-act:{}-{}-shortcut:{}",
                c.kernel,
                c.stride,
                c.groups,
                c.bias as u8,
                c.bn as u8,
                act_name(c.act),
                SeField(c.se),
                shortcut_name(c.shortcut)
            ),
            OpId::MbConv(m) => write!(
                f,
                "mbconv-input:{i}-output:{o}-mid:{}-expand:{}-kernel:{}-stride:{}-groups:{}-shuffle:{}-act:{}-{}-shortcut:{}",
                m.mid,
                m.expand as u8,
                m.kernel,
                m.stride,
                m.groups,
                m.shuffle as u8,
                act_name(m.act),
                SeField(m.se),
                shortcut_name(m.shortcut)
            ),
            OpId::Identity => write!(f, "identity-input:{i}-output:{o}"),
            OpId::GlobalAvgPool => write!(f, "avgpool-input:{i}-output:{o}"),
            OpId::Dropout => write!(f, "dropout-input:{i}-output:{o}"),
            OpId::Linear(l) => write!(f, "linear-input:{i}-output:{o}-bias:{}-act:{}", l.bias as u8, act_name(l.act)),
        }
    }
}

/// A key string that is not a layer identity, with the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{key}` is not a layer key: {why}")]
pub struct KeyError {
    pub key: String,
    pub why: String,
}

/// The `field:value` parts of a key after its kind, in order.
struct Fields<'a> {
    parts: Vec<(&'a str, &'a str)>,
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Result<&'a str, String> {
        self.parts.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).ok_or_else(|| format!("no `{name}` field"))
    }
    fn number(&self, name: &str) -> Result<u32, String> {
        let v = self.get(name)?;
        v.parse().map_err(|_| format!("`{name}:{v}` is not a number"))
    }
    fn flag(&self, name: &str) -> Result<bool, String> {
        match self.get(name)? {
            "0" => Ok(false),
            "1" => Ok(true),
            v => Err(format!("`{name}:{v}` is not 0 or 1")),
        }
    }
    fn shape(&self, name: &str) -> Result<Shape, String> {
        let v = self.get(name)?;
        let dims: Vec<u32> =
            v.split('x').map(|d| d.parse()).collect::<Result<_, _>>().map_err(|_| bad_shape(name, v))?;
        match dims[..] {
            [h, w, c] => Ok(Shape { c, h, w }),
            _ => Err(bad_shape(name, v)),
        }
    }
    fn act(&self) -> Result<Act, String> {
        parse_act(self.get("act")?)
    }
    fn se(&self) -> Result<Option<SqueezeExcite>, String> {
        let v = self.get("se")?;
        if v == "0" {
            return Ok(None);
        }
        let bad = || format!("`se:{v}` is not 0 or MID:ACT:GATE");
        let [mid, act, gate] = v.split(':').collect::<Vec<_>>()[..] else { return Err(bad()) };
        let gate = match gate {
            "sigmoid" => Gate::Sigmoid,
            "hsigmoid" => Gate::HSigmoid,
            _ => return Err(bad()),
        };
        Ok(Some(SqueezeExcite { mid: mid.parse().map_err(|_| bad())?, act: parse_act(act)?, gate }))
    }
    fn shortcut(&self) -> Result<Shortcut, String> {
        match self.get("shortcut")? {
            "none" => Ok(Shortcut::None),
            "identity" => Ok(Shortcut::Identity),
            "avgpool" => Ok(Shortcut::AvgPool),
            v => Err(format!("`shortcut:{v}` is not none, identity or avgpool")),
        }
    }
}

fn bad_shape(name: &str, v: &str) -> String {
    format!("`{name}:{v}` is not HxWxC")
}

fn parse_act(v: &str) -> Result<Act, String> {
    [Act::None, Act::Relu, Act::Relu6, Act::HSwish]
        .into_iter()
        .find(|a| a.name() == v)
        .ok_or_else(|| format!("`act:{v}` is not none, relu, relu6 or hswish"))
}

impl FromStr for LayerId {
    type Err = KeyError;

    fn from_str(key: &str) -> Result<LayerId, KeyError> {
        let err = |why: String| KeyError { key: key.into(), why };
        let mut parts = key.split('-');
        let kind = parts.next().unwrap_or_default();
        // `se:MID:ACT:GATE` keeps its colons in the value.
        let parts = parts
            .map(|p| p.split_once(':').ok_or_else(|| err(format!("`{p}` is not FIELD:VALUE"))))
            .collect::<Result<Vec<_>, _>>()?;
        let f = Fields { parts };
        let parse = || -> Result<LayerId, String> {
            let (input, output) = (f.shape("input")?, f.shape("output")?);
            let op = match kind {
                "conv" => OpId::Conv(Conv {
                    out: output.c,
                    kernel: f.number("kernel")?,
                    stride: f.number("stride")?,
                    groups: f.number("groups")?,
                    bias: f.flag("bias")?,
                    bn: f.flag("bn")?,
                    act: f.act()?,
                    se: f.se()?,
                    shortcut: f.shortcut()?,
                }),
                "mbconv" => OpId::MbConv(MbConv {
                    out: output.c,
                    mid: f.number("mid")?,
                    expand: f.flag("expand")?,
                    kernel: f.number("kernel")?,
                    stride: f.number("stride")?,
                    groups: f.number("groups")?,
                    shuffle: f.flag("shuffle")?,
                    act: f.act()?,
                    se: f.se()?,
                    shortcut: f.shortcut()?,
                }),
                "identity" => OpId::Identity,
                "avgpool" => OpId::GlobalAvgPool,
                "dropout" => OpId::Dropout,
                "linear" => OpId::Linear(Linear { out: output.c, bias: f.flag("bias")?, act: f.act()? }),
                other => return Err(format!("unknown layer kind `{other}`")),
            };
            Ok(LayerId { input, output, op })
        };
        let id = parse().map_err(err)?;
        // Unknown or repeated fields would make two strings name one layer.
        if id.to_string() != key {
            return Err(err(format!("not in canonical form (expected `{id}`)")));
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_of_every_space_and_preset_parses_back_from_its_key() {
        let mut layers: Vec<Layer> = Vec::new();
        for space in crate::all_spaces() {
            let res = space.resolutions();
            layers.extend(space.layer_table(&[res[0], res[res.len() - 1]]));
        }
        for p in crate::presets::PRESETS {
            layers.extend(p.arch().network(None).layers);
        }
        assert!(layers.len() > 1000, "{} layers", layers.len());
        for l in &layers {
            let key = l.key();
            let id: LayerId = key.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(id, l.id(), "{key}");
            assert_eq!(id.layer(&l.name).key(), key);
        }
    }

    #[test]
    fn malformed_keys_are_refused_naming_the_problem() {
        let good = "linear-input:1x1x1280-output:1x1x1000-bias:1-act:none";
        assert!(good.parse::<LayerId>().is_ok());
        for (key, why) in [
            ("linear-input:1x1x1280-output:1x1x1000-bias:2-act:none", "`bias:2` is not 0 or 1"),
            ("linear-input:1x1-output:1x1x1000-bias:1-act:none", "`input:1x1` is not HxWxC"),
            ("linear-input:1x1x1280-output:1x1x1000-act:none", "no `bias` field"),
            ("warp-input:1x1x1-output:1x1x1", "unknown layer kind `warp`"),
            ("linear-input:1x1x1280-output:1x1x1000-bias:1-act:none-extra:1", "not in canonical form"),
        ] {
            let e = key.parse::<LayerId>().unwrap_err();
            assert!(e.to_string().contains(why), "{key}: {e}");
        }
    }

    #[test]
    fn dropout_rates_share_one_identity() {
        let l = |p| Layer {
            name: "d".into(),
            input: Shape { c: 8, h: 1, w: 1 },
            output: Shape { c: 8, h: 1, w: 1 },
            op: Op::Dropout { p },
        };
        assert_eq!(l(0.2).id(), l(0.5).id());
    }
}
