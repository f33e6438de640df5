//! The compiled per-layer form of an additive predictor answers bit for bit what the
//! predictor does, calibration included, and leaves out layers the predictor cannot price.

use predictors::additive::{Calibration, LayerTable};
use predictors::lut::{Coverage, Entry, LutPredictor};
use predictors::LatencyPredictor;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Irregular entries (not a smooth function of the layer) and a calibration with scale ≠ 1 and an offset.
fn lut(space: &str, drop_first: bool) -> LutPredictor {
    let s = spaces::space(space).unwrap();
    let layers = s.layer_table(&s.resolutions());
    let entries = layers
        .iter()
        .enumerate()
        .skip(drop_first as usize)
        .map(|(i, l)| Entry {
            key: l.key(),
            ms: 0.013 * ((i * 7919) % 97) as f64 + l.macs() as f64 / 3.1e7,
            macs: None,
            memory_bytes: None,
        })
        .collect();
    let cov = vec![Coverage { space: space.into(), resolutions: s.resolutions() }];
    let mut p = LutPredictor::from_entries("test", entries, cov).unwrap();
    p.set_calibration(Calibration { scale: 1.37, offset_ms: 2.25 });
    p
}

#[test]
fn compiled_table_is_bit_identical_to_predict_ms() {
    for space in ["ofa-mbv3-w1.2", "fbnet-cifar100", "singlepath"] {
        let s = spaces::space(space).unwrap();
        let p = lut(space, false);
        let per_layer = p.per_layer().expect("a lookup table is additive per layer");
        let table = LayerTable::compile(per_layer, &s.layer_table(&s.resolutions())).unwrap();
        assert_eq!(table.calibration(), Calibration { scale: 1.37, offset_ms: 2.25 });
        let mut rng = StdRng::seed_from_u64(7);
        let (lo, hi) = s.extremes();
        for g in [lo, hi].into_iter().chain((0..300).map(|_| s.sample(&mut rng))) {
            let net = s.network(&g);
            let want = p.predict_ms(&net).unwrap();
            let got = table.network_ms(&net).expect("every layer is in the table");
            assert_eq!(got.to_bits(), want.to_bits(), "{space}: {got} vs {want}");
        }
    }
}

#[test]
fn layers_without_an_entry_stay_out_and_are_named_by_the_predictor() {
    let s = spaces::space("ofa-mbv3-w1.2").unwrap();
    let p = lut("ofa-mbv3-w1.2", true);
    let layers = s.layer_table(&s.resolutions());
    let table = LayerTable::compile(p.per_layer().unwrap(), &layers).unwrap();
    assert_eq!(table.len(), layers.len() - 1);
    assert!(table.get(&layers[0]).is_none());
    let e = table.require(&layers[0]).unwrap_err().to_string();
    assert!(e.contains(&layers[0].key()), "{e}");
    // The stem (first layer) is in every member: no network is priced, the predictor refuses.
    let net = s.network(&s.extremes().0);
    assert!(table.network_ms(&net).is_none());
    assert!(p.predict_ms(&net).is_err());
}

#[test]
fn families_that_are_not_sums_of_layer_identities_say_so() {
    // Single-Path's Pixel 1 model prices layers by position (layers 2–4 share one shape with
    // different numbers), so a table keyed on the layer's identity cannot represent it.
    let p = predictors::spnas::SinglePathPredictor {
        source: "test".into(),
        constant_ms: 1.0,
        table: vec![[1.0, 2.0, 3.0, 4.0]; 22],
    };
    assert!(p.per_layer().is_none());
}

#[test]
fn a_table_without_fallback_covers_the_resolutions_of_its_coverage() {
    let p = lut("fbnet-cifar100", false);
    assert_eq!(p.resolutions_covered("fbnet-cifar100"), Some(spaces::space("fbnet-cifar100").unwrap().resolutions()));
    assert_eq!(p.resolutions_covered("ofa-mbv3-w1.0"), None, "no coverage listed: no known limit");
}

/// The MACs/bytes baseline is a per-layer sum with its intercept as the offset: compiled, it
/// answers `predict_ms`'s bits (search's fast path), and it can be `fit --from`'s source.
#[test]
fn the_flops_baseline_compiles_to_its_own_bits() {
    let s = spaces::space("fbnet-cifar100").unwrap();
    let p = predictors::flops::FlopsPredictor {
        variant: predictors::flops::Variant::MacsMemory,
        intercept_ms: 1.25,
        ms_per_mmac: 0.031,
        ms_per_mb: 0.7,
        spaces: vec![],
    };
    let layers = s.layer_table(&s.resolutions());
    let table = LayerTable::compile(p.per_layer().unwrap(), &layers).unwrap();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
    for _ in 0..50 {
        let net = s.network(&s.sample(&mut rng));
        let direct = p.predict_ms(&net).unwrap();
        assert_eq!(table.network_ms(&net).unwrap().to_bits(), direct.to_bits());
        let macs: f64 = net.layers.iter().filter(|l| l.is_timed()).map(|l| l.macs() as f64 / 1e6).sum();
        let mb: f64 = net.layers.iter().filter(|l| l.is_timed()).map(|l| l.memory_bytes() as f64 / 1e6).sum();
        assert!((direct - (1.25 + 0.031 * macs + 0.7 * mb)).abs() < 1e-9 * direct);
    }
}
