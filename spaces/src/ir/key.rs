//! Lookup-table keys: one canonical string per distinct layer configuration,
//! in the OFA style (`name-input:HxWxC-output:HxWxC-field:value…`).

use super::{Layer, Op, Shortcut, SqueezeExcite};
use std::fmt::Write;

fn se_field(se: &Option<SqueezeExcite>) -> String {
    match se {
        None => "se:0".into(),
        Some(s) => format!("se:{}:{}:{}", s.mid, s.act.name(), gate_name(s)),
    }
}

fn gate_name(s: &SqueezeExcite) -> &'static str {
    match s.gate {
        super::Gate::Sigmoid => "sigmoid",
        super::Gate::HSigmoid => "hsigmoid",
    }
}

fn shortcut_name(s: Shortcut) -> &'static str {
    match s {
        Shortcut::None => "none",
        Shortcut::Identity => "identity",
        Shortcut::AvgPool => "avgpool",
    }
}

impl Layer {
    /// The layer's configuration and shapes as a lookup-table key. Two layers have
    /// the same key iff they compute the same function shape-for-shape (the name and
    /// position in the network do not enter).
    pub fn key(&self) -> String {
        let mut k = String::new();
        let (i, o) = (self.input, self.output);
        match &self.op {
            Op::Conv(c) => {
                write!(
                    k,
                    "conv-input:{i}-output:{o}-kernel:{}-stride:{}-groups:{}-bias:{}-bn:{}-act:{}-{}-shortcut:{}",
                    c.kernel,
                    c.stride,
                    c.groups,
                    c.bias as u8,
                    c.bn as u8,
                    c.act.name(),
                    se_field(&c.se),
                    shortcut_name(c.shortcut)
                )
            }
            Op::MbConv(m) => write!(
                k,
                "mbconv-input:{i}-output:{o}-mid:{}-expand:{}-kernel:{}-stride:{}-groups:{}-shuffle:{}-act:{}-{}-shortcut:{}",
                m.mid,
                m.expand as u8,
                m.kernel,
                m.stride,
                m.groups,
                m.shuffle as u8,
                m.act.name(),
                se_field(&m.se),
                shortcut_name(m.shortcut)
            ),
            Op::Identity => write!(k, "identity-input:{i}-output:{o}"),
            Op::GlobalAvgPool => write!(k, "avgpool-input:{i}-output:{o}"),
            Op::Dropout { .. } => write!(k, "dropout-input:{i}-output:{o}"),
            Op::Linear(l) => write!(k, "linear-input:{i}-output:{o}-bias:{}-act:{}", l.bias as u8, l.act.name()),
        }
        .expect("writing to a String");
        k
    }

    /// Whether a latency lookup table needs an entry for this layer (dropout never runs at inference).
    pub fn is_timed(&self) -> bool {
        !matches!(self.op, Op::Dropout { .. })
    }
}
