//! Every MACs/params figure of `shared/reference/oracles.md`, reproduced exactly.

use spaces::{presets::preset, space, Arch};

fn preset_counts(name: &str) -> (u64, u64) {
    let net = preset(name).unwrap().arch().network(None);
    (net.macs(), net.params())
}

#[test]
fn mobilenet_v2() {
    assert_eq!(preset_counts("mobilenetv2"), (300_774_272, 3_504_872));
}

#[test]
fn mobilenet_v3_large() {
    assert_eq!(preset_counts("mobilenetv3-large"), (216_589_760, 5_483_032));
}

#[test]
fn mnasnet_a1() {
    assert_eq!(preset_counts("mnasnet-a1"), (311_579_072, 3_887_038));
}

#[test]
fn single_path_nas() {
    assert_eq!(preset_counts("spnasnet"), (333_467_072, 4_421_616));
}

#[test]
fn fbnet_a_b_c() {
    assert_eq!(preset_counts("fbnet-a"), (249_921_848, 4_321_464));
    assert_eq!(preset_counts("fbnet-b"), (306_210_888, 4_863_288));
    assert_eq!(preset_counts("fbnet-c").0, 384_960_160);
}

#[test]
fn fbnet_b_with_the_narrow_head() {
    let json = preset("fbnet-b").unwrap().json.replace("1984", "1504");
    let net = Arch::parse("fbnet", &json).unwrap().network(None);
    assert_eq!((net.macs(), net.params()), (297_451_848, 4_213_368));
}

fn ofa(space_name: &str, largest: bool, r: u32) -> (u64, u64) {
    let (k, e, d) = if largest { (7, 6, 4) } else { (3, 3, 2) };
    let json = format!(r#"{{"ks": {:?}, "e": {:?}, "d": {:?}, "r": [{r}]}}"#, [k; 20], [e; 20], [d; 5]);
    let net = Arch::parse(space_name, &json).unwrap().network(None);
    (net.macs(), net.params())
}

#[test]
fn ofa_mbv3_w10_extremes() {
    for (r, macs) in [(224, 566_170_656), (192, 417_292_160), (160, 291_318_048), (128, 188_248_320)] {
        assert_eq!(ofa("ofa-mbv3-w1.0", true, r), (macs, 7_664_760), "largest at r{r}");
    }
    for (r, macs) in [(224, 121_278_672), (192, 89_841_344), (160, 63_240_528), (128, 41_476_224)] {
        assert_eq!(ofa("ofa-mbv3-w1.0", false, r), (macs, 3_410_792), "smallest at r{r}");
    }
}

#[test]
fn ofa_mbv3_w12_extremes() {
    assert_eq!(ofa("ofa-mbv3-w1.2", true, 224), (843_101_040, 10_701_632));
    assert_eq!(ofa("ofa-mbv3-w1.2", false, 224), (193_078_200, 4_602_456));
}

#[test]
fn ofa_odd_resolution_uses_ceil_division() {
    // r = 200 gives 100 -> 50 -> 25 -> 13 -> 13 -> 7 (oracles.md, pitfalls).
    let s = space("ofa-mbv3-w1.0").unwrap();
    let g = s.parse(r#"{"ks": [3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3], "e": [3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3], "d": [2,2,2,2,2], "r": [200]}"#).unwrap();
    let net = s.network(&g);
    let firsts: Vec<u32> = net
        .layers
        .iter()
        .filter(|l| l.name.ends_with("block0") && l.name.starts_with("stage"))
        .map(|l| l.output.h)
        .collect();
    assert_eq!(net.layers[0].output.h, 100);
    assert_eq!(firsts, vec![50, 25, 13, 13, 7]);
}
