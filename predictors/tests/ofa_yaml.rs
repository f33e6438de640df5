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
    let e = format!("{:#}", ofa_yaml::import(&dir, "ofa-mbv3-w1.2", None).err().unwrap());
    assert!(e.contains(&first), "{e}");
    assert!(ofa_yaml::import(&dir, "fbnet", None).is_err());
}
