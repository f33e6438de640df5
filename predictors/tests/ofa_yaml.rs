//! OFA lookup-table import: the IR layers of OFA-MobileNetV3 w1.2 map onto exactly the
//! key formats and key count of the published Note10 tables (latency.md §3).

use predictors::ofa_yaml::{self, ofa_key};
use predictors::LatencyPredictor;
use std::collections::BTreeSet;

fn keys(space: &str, r: u32) -> BTreeSet<String> {
    let s = spaces::space(space).unwrap();
    let mbv3 = space.starts_with("ofa-mbv3");
    s.layer_table_at(r).iter().filter_map(|l| ofa_key(l, mbv3).unwrap()).collect()
}

#[test]
fn mbv3_w12_keys_match_the_published_table() {
    let k = keys("ofa-mbv3-w1.2", 224);
    assert_eq!(k.len(), 96, "the Note10 tables have 96 keys");
    for want in [
        "Conv-input:224x224x3-output:112x112x24",
        "expanded_conv-input:112x112x24-output:112x112x24-expand:24-kernel:3-stride:1-idskip:1-se:0-hs:0",
        "expanded_conv-input:112x112x24-output:56x56x32-expand:144-kernel:3-stride:2-idskip:0-se:0-hs:0",
        "Conv_1-input:7x7x192-output:7x7x1152",
        "AvgPool2D-input:7x7x1152-output:1x1x1152",
        "Conv_2-input:1x1x1152-output:1x1x1536",
        "Logits-input:1x1x1536-output:1000",
    ] {
        assert!(k.contains(want), "missing {want}");
    }
}

#[test]
fn proxyless_keys_use_the_ratio_and_fold_pooling_into_logits() {
    let k = keys("ofa-proxyless-w1.3", 224);
    assert!(k.iter().any(|k| k.starts_with("expanded_conv-") && k.contains("-expand:6-") && !k.contains("se:")));
    assert!(k.iter().any(|k| k.starts_with("Logits-input:7x7x")), "{k:?}");
}

#[test]
fn imported_table_predicts_the_sum_of_means() {
    // A synthetic table in the published layout (block style and one flow-style row).
    let s = spaces::space("ofa-mbv3-w1.2").unwrap();
    let mut text = String::from("# synthetic\n");
    for (i, k) in keys("ofa-mbv3-w1.2", 160).iter().enumerate() {
        if i == 0 {
            text += &format!("{k}: {{count: 3, mean: {}, std: 0.01}}\n", 1.0 + i as f64 / 100.0);
        } else {
            text += &format!("{k}:\n  count: 500\n  mean: {}\n  std: 0.02\n", 1.0 + i as f64 / 100.0);
        }
    }
    let dir = std::env::temp_dir().join(format!("ofa-yaml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("160_lookup_table.yaml"), &text).unwrap();
    let lut = ofa_yaml::import(&dir, "ofa-mbv3-w1.2", None).unwrap();
    let table = ofa_yaml::parse(&text).unwrap();
    let g =
        s.from_json(&serde_json::json!({"ks": vec![7; 20], "e": vec![6; 20], "d": vec![4; 5], "r": [160]})).unwrap();
    let net = s.network(&g);
    let want: f64 = net.layers.iter().filter_map(|l| ofa_key(l, true).unwrap()).map(|k| table[&k].mean).sum();
    assert!((lut.predict_ms(&net).unwrap() - want).abs() < 1e-9);
    // A table without one of the keys is refused with the key named.
    let first = table.keys().next().unwrap().clone();
    let cut: String = text.lines().filter(|l| !l.starts_with(&first)).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("160_lookup_table.yaml"), cut).unwrap();
    let e = common::chain(&ofa_yaml::import(&dir, "ofa-mbv3-w1.2", None).err().unwrap());
    assert!(e.contains(&first), "{e}");
    assert!(ofa_yaml::import(&dir, "fbnet", None).is_err());
}

use crate::common;

fn note10() -> std::path::PathBuf {
    common::shared().join("data/ofa/note10")
}

/// The hwnas arch JSON of a published network in `specialized.csv` (the last, quoted column).
fn specialized_arch(net_id: &str) -> serde_json::Value {
    let csv = std::fs::read_to_string(common::shared().join("data/ofa/specialized.csv")).unwrap();
    let line = csv.lines().find(|l| l.starts_with(net_id)).unwrap_or_else(|| panic!("{net_id} in specialized.csv"));
    let quoted = &line[line.find(",\"").unwrap() + 2..line.len() - 1];
    serde_json::from_str(&quoted.replace("\"\"", "\"")).unwrap()
}

#[test]
fn note10_tables_as_published() {
    let lut = ofa_yaml::import(&note10(), "ofa-mbv3-w1.2", None).unwrap();
    assert_eq!(lut.resolutions_covered("ofa-mbv3-w1.2"), Some(vec![160, 176, 192, 208, 224]));
    assert_eq!(lut.resolutions_covered("ofa-mbv3-w1.0"), Some(vec![]), "no table exists for w1.0");
    let s = spaces::space("ofa-mbv3-w1.2").unwrap();
    let g = s.from_json(&specialized_arch("note10_lat@30ms_top1@78.4_finetune@75")).unwrap();
    let ms = lut.predict_ms(&s.network(&g)).unwrap();
    assert!((ms - 29.965).abs() < 5e-4, "note10_lat@30ms: {ms}");
    let (small, large) = s.extremes();
    let (lo, hi) =
        (lut.predict_ms(&s.network_at(&small, 224)).unwrap(), lut.predict_ms(&s.network_at(&large, 224)).unwrap());
    assert!((hi - 92.398).abs() < 5e-4, "largest at 224: {hi}");
    assert!((lo - 17.769).abs() < 5e-4, "smallest at 224: {lo}");
    // 128 is in the space but not in the tables: refused, naming the covered resolutions.
    let e = lut.predict_ms(&s.network_at(&small, 128)).unwrap_err().to_string();
    assert!(e.contains("no table for resolution 128") && e.contains("160, 176, 192, 208, 224"), "{e}");
    // Per resolution the tables are additive per layer; compiled, they answer predict_ms's bits.
    assert!(lut.per_layer().is_none() && lut.per_layer_at(128).is_none());
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
    for r in [160, 176, 192, 208, 224] {
        let t = predictors::additive::LayerTable::compile(lut.per_layer_at(r).unwrap(), &s.layer_table_at(r)).unwrap();
        for _ in 0..50 {
            let net = s.network_at(&s.sample(&mut rng), r);
            assert_eq!(t.network_ms(&net).unwrap().to_bits(), lut.predict_ms(&net).unwrap().to_bits());
        }
    }
    // The saved file predicts the same.
    let path = std::env::temp_dir().join(format!("note10-{}.json", std::process::id()));
    lut.save(&path).unwrap();
    let back = predictors::load_predictor(&path).unwrap();
    assert_eq!(back.predict_ms(&s.network(&g)).unwrap().to_bits(), ms.to_bits());
}

/// Copies the published tables into a scratch directory, `edit` changing the 224 table's text.
fn edited_note10(name: &str, edit: impl Fn(&str) -> String) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("note10-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for r in [160, 176, 192, 208, 224] {
        let f = format!("{r}_lookup_table.yaml");
        let text = std::fs::read_to_string(note10().join(&f)).unwrap();
        std::fs::write(dir.join(&f), if r == 224 { edit(&text) } else { text }).unwrap();
    }
    dir
}

#[test]
fn damaged_or_foreign_tables_are_refused_by_name() {
    // Truncated mid-entry: the last entry has no mean.
    let dir = edited_note10("truncated", |t| {
        let cut = t.rfind("  mean:").unwrap();
        t[..cut].to_string()
    });
    let e = common::chain(&ofa_yaml::import(&dir, "ofa-mbv3-w1.2", None).err().unwrap());
    assert!(e.contains("224_lookup_table.yaml") && e.contains("no valid `mean`") && e.contains("truncated"), "{e}");
    // One entry missing: named, with its file.
    let key = "Conv_1-input:7x7x192-output:7x7x1152";
    let dir = edited_note10("missing", |t| {
        let mut out = String::new();
        let mut skip = false;
        for l in t.lines() {
            if !l.starts_with(' ') {
                skip = l.starts_with(key);
            }
            if !skip {
                out += l;
                out += "\n";
            }
        }
        out
    });
    let e = common::chain(&ofa_yaml::import(&dir, "ofa-mbv3-w1.2", None).err().unwrap());
    assert!(e.contains(key) && e.contains("224_lookup_table.yaml"), "{e}");
    // A ProxylessNAS table (keys written for ofa-proxyless-w1.3) given for an MBv3 space, and the reverse.
    let dir = std::env::temp_dir().join(format!("proxyless-table-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text: String =
        keys("ofa-proxyless-w1.3", 224).iter().map(|k| format!("{k}:\n  count: 1\n  mean: 0.5\n")).collect();
    std::fs::write(dir.join("224_lookup_table.yaml"), text).unwrap();
    assert!(ofa_yaml::import(&dir, "ofa-proxyless-w1.3", None).is_ok());
    let e = common::chain(&ofa_yaml::import(&dir, "ofa-mbv3-w1.2", None).err().unwrap());
    assert!(e.contains("ProxylessNAS lookup table") && e.contains("ofa-mbv3-w1.2"), "{e}");
    let e = common::chain(&ofa_yaml::import(&note10(), "ofa-proxyless-w1.3", None).err().unwrap());
    assert!(e.contains("OFA-MobileNetV3 lookup table") && e.contains("ofa-proxyless-w1.3"), "{e}");
}
