//! The published networks, each in the space it belongs to (or as a free-form
//! block-string network where no space expresses it exactly).

use crate::{Arch, ArchError};

pub struct Preset {
    pub name: &'static str,
    pub space: &'static str,
    pub description: &'static str,
    pub json: &'static str,
}

impl Preset {
    pub fn arch(&self) -> Arch {
        Arch::parse(self.space, self.json).unwrap_or_else(|e| panic!("preset {} is invalid: {e}", self.name))
    }
}

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "mobilenetv2",
        space: "mnasnet",
        description: "MobileNetV2 1.0 (the MnasNet space's base network)",
        json: MOBILENET_V2,
    },
    Preset {
        name: "mobilenetv3-large",
        space: "blocks",
        description: "MobileNetV3-Large 1.0 (torchvision mobilenet_v3_large)",
        json: r#"{"stem": 16, "stem_act": "hswish", "se_style": "mobilenetv3", "head": 960, "head_act": "hswish", "fc": 1280, "dropout": 0.2,
                  "blocks": ["r1_k3_s11_e1_i16_o16", "r1_k3_s22_e4_i16_o24", "r1_k3_s11_e3_i24_o24",
                             "r1_k5_s22_e3_i24_o40_se0.25", "r2_k5_s11_e3_i40_o40_se0.25",
                             "r1_k3_s22_e6_i40_o80_hs", "r1_k3_s11_e2.5_i80_o80_hs", "r2_k3_s11_e2.3_i80_o80_hs",
                             "r1_k3_s11_e6_i80_o112_se0.25_hs", "r1_k3_s11_e6_i112_o112_se0.25_hs",
                             "r1_k5_s22_e6_i112_o160_se0.25_hs", "r2_k5_s11_e6_i160_o160_se0.25_hs"]}"#,
    },
    Preset {
        name: "mnasnet-a1",
        space: "blocks",
        description: "MnasNet-A1 (tensorflow/tpu block strings; widths 112/160 are outside the factorized space)",
        json: r#"{"stem": 32, "head": 1280, "dropout": 0.2,
                  "blocks": ["r1_k3_s11_e1_i32_o16_noskip", "r2_k3_s22_e6_i16_o24", "r3_k5_s22_e3_i24_o40_se0.25",
                             "r4_k3_s22_e6_i40_o80", "r2_k3_s11_e6_i80_o112_se0.25", "r3_k5_s22_e6_i112_o160_se0.25",
                             "r1_k3_s11_e6_i160_o320"]}"#,
    },
    Preset {
        name: "mnasnet-b1",
        space: "blocks",
        description: "MnasNet-B1 (tensorflow/tpu block strings, no SE)",
        json: r#"{"stem": 32, "head": 1280, "dropout": 0.2,
                  "blocks": ["r1_k3_s11_e1_i32_o16_noskip", "r3_k3_s22_e3_i16_o24", "r3_k5_s22_e3_i24_o40", "r3_k5_s22_e6_i40_o80",
                             "r2_k3_s11_e6_i80_o96", "r4_k5_s22_e6_i96_o192", "r1_k3_s11_e6_i192_o320_noskip"]}"#,
    },
    Preset {
        name: "spnasnet",
        space: "singlepath",
        description: "Single-Path NAS Pixel 1 network (timm spnasnet_100; the skipped stage-1 layer is layer 4)",
        json: r#"{"ops": ["k3_e3", "k3_e3", "k3_e3", "skip",
                          "k5_e6", "k3_e3", "k3_e3", "k3_e3",
                          "k5_e6", "k3_e3", "k3_e3", "k3_e3",
                          "k5_e6", "k5_e3", "k5_e3", "k5_e3",
                          "k5_e6", "k5_e6", "k5_e6", "k5_e6"]}"#,
    },
    Preset {
        name: "fbnet-a",
        space: "fbnet",
        description: "FBNet-A (paper block, head 1504)",
        json: r#"{"head": 1504, "ops": ["skip",
                  "k3_e3", "k3_e1", "skip", "skip",
                  "k5_e6", "k3_e3", "k5_e1", "k3_e3",
                  "k5_e6", "k5_e3", "k5_e1_g2", "k5_e6",
                  "k3_e6", "k5_e1_g2", "k5_e3", "k3_e1_g2",
                  "k5_e6", "k5_e6", "k5_e3", "k5_e6",
                  "k5_e6"]}"#,
    },
    Preset {
        name: "fbnet-b",
        space: "fbnet",
        description: "FBNet-B (paper block, head 1984)",
        json: r#"{"head": 1984, "ops": ["k3_e1",
                  "k3_e6", "k5_e1", "k3_e1", "k3_e1",
                  "k5_e6", "k5_e3", "k3_e6", "k5_e6",
                  "k5_e6", "k5_e6", "skip", "k5_e3",
                  "k5_e6", "k3_e1", "k5_e1", "k5_e3",
                  "k5_e6", "k5_e1", "k5_e6", "k5_e6",
                  "k3_e6"]}"#,
    },
    Preset {
        name: "fbnet-c",
        space: "fbnet",
        description: "FBNet-C (paper block, head 1984)",
        json: r#"{"head": 1984, "ops": ["k3_e1",
                  "k3_e6", "skip", "k3_e1", "k3_e1",
                  "k5_e6", "k5_e3", "k5_e6", "k3_e6",
                  "k5_e6", "k5_e3", "k5_e6", "k5_e6",
                  "k5_e6", "k5_e6", "k5_e6", "k5_e3",
                  "k5_e6", "k5_e6", "k5_e6", "k5_e6",
                  "k3_e6"]}"#,
    },
];

const MOBILENET_V2: &str = r#"{"blocks": [
        {"op": "dwconv", "kernel": 3, "se": 0, "skip": "identity", "filters": 1.0, "layers": 1},
        {"op": "mbconv6", "kernel": 3, "se": 0, "skip": "identity", "filters": 1.0, "layers": 2},
        {"op": "mbconv6", "kernel": 3, "se": 0, "skip": "identity", "filters": 1.0, "layers": 3},
        {"op": "mbconv6", "kernel": 3, "se": 0, "skip": "identity", "filters": 1.0, "layers": 4},
        {"op": "mbconv6", "kernel": 3, "se": 0, "skip": "identity", "filters": 1.0, "layers": 3},
        {"op": "mbconv6", "kernel": 3, "se": 0, "skip": "identity", "filters": 1.0, "layers": 3},
        {"op": "mbconv6", "kernel": 3, "se": 0, "skip": "identity", "filters": 1.0, "layers": 1}]}"#;

/// The preset called `name`.
pub fn preset(name: &str) -> Result<&'static Preset, ArchError> {
    PRESETS.iter().find(|p| p.name == name).ok_or_else(|| {
        let known: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
        ArchError::UnknownPreset(name.into(), known.join(", "))
    })
}
