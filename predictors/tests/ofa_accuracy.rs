//! OFA's accuracy predictor imported from its .pth gives OFA's numbers, survives its file,
//! and agrees with an independent numpy forward (own pickle reading, own spec2feats).

use crate::common;

use predictors::accuracy::{self, AccuracyPredictor};
use predictors::ofa_accuracy::{spec2feats, OfaAccuracyPredictor, FAMILY};
use rand::SeedableRng;
use spaces::{Genome, SearchSpace};
use std::path::{Path, PathBuf};
use std::process::Command;

fn pth() -> PathBuf {
    common::shared().join("data/ofa/acc_predictor.pth")
}

fn w12() -> Box<dyn SearchSpace> {
    spaces::space("ofa-mbv3-w1.2").unwrap()
}

/// `note10_lat@30ms_top1@78.4_finetune@75` as a w1.2 member, from the `arch` column of specialized.csv.
fn note10_30ms(space: &dyn SearchSpace) -> Genome {
    let csv = std::fs::read_to_string(common::shared().join("data/ofa/specialized.csv")).unwrap();
    let row = csv.lines().find(|l| l.starts_with("note10_lat@30ms_")).expect("note10_lat@30ms row");
    let arch = &row[row.find("\"{").unwrap() + 1..row.rfind("}\"").unwrap() + 1];
    space.from_json(&serde_json::from_str(&arch.replace("\"\"", "\"")).unwrap()).unwrap()
}

#[test]
fn gives_ofa_numbers_for_note10_30ms_and_the_largest_subnet() {
    let s = w12();
    let p = OfaAccuracyPredictor::import(&pth(), "ofa-mbv3-w1.2").unwrap();
    let note10 = p.predict(&*s, &note10_30ms(&*s)).unwrap();
    assert!((note10 - 0.819671).abs() < 5e-7, "note10_lat@30ms: {note10}");
    let largest = s.extremes().1;
    assert_eq!(s.resolution(&largest), 224);
    let top = p.predict(&*s, &largest).unwrap();
    assert!((top - 0.835928).abs() < 5e-7, "largest w1.2 at 224: {top}");
    // The same member written as OFA writes specs.
    assert_eq!(p.predict_spec(&[7; 20], &[6; 20], &[4; 5], 224).unwrap(), top);
}

#[test]
fn round_trips_through_the_accuracy_loader_and_refuses_other_spaces() {
    let s = w12();
    let p = OfaAccuracyPredictor::import(&pth(), "ofa-mbv3-w1.2").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let gs: Vec<Genome> = (0..16).map(|_| s.sample(&mut rng)).collect();
    let refs: Vec<&Genome> = gs.iter().collect();
    let batch = p.predict_batch(&*s, &refs).unwrap();
    for (g, &b) in gs.iter().zip(&batch) {
        assert_eq!(p.predict(&*s, g).unwrap(), b);
        assert!((0.5..0.9).contains(&b), "{b}");
    }
    let dir = std::env::temp_dir().join(format!("hwnas-ofa-acc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("acc.json");
    p.save(&path).unwrap();
    let back = accuracy::load(&path).unwrap();
    assert_eq!(back.family(), FAMILY);
    assert_eq!(back.predict_batch(&*s, &refs).unwrap(), batch);
    for other in ["ofa-mbv3-w1.0", "ofa-proxyless-w1.3", "singlepath"] {
        let o = spaces::space(other).unwrap();
        let err = back.predict(&*o, &o.extremes().0).unwrap_err().to_string();
        assert!(err.contains("serves `ofa-mbv3-w1.2`") && err.contains(other), "{err}");
    }
    // Served on w1.0 only when asked, with the same encoding: the same numbers.
    let w10 = spaces::space("ofa-mbv3-w1.0").unwrap();
    let p10 = OfaAccuracyPredictor::import(&pth(), "ofa-mbv3-w1.0").unwrap();
    assert_eq!(p10.predict(&*w10, &gs[0]).unwrap(), batch[0]);
    assert!(OfaAccuracyPredictor::import(&pth(), "ofa-proxyless-w1.3").is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn refuses_resolutions_and_files_it_has_no_encoding_for() {
    let (ks, e, d) = ([5u32; 20], [4u32; 20], [3u32; 5]);
    assert!(spec2feats(&ks, &e, &d, 112).is_ok() && spec2feats(&ks, &e, &d, 239).is_ok());
    for r in [111, 240, 300] {
        let err = spec2feats(&ks, &e, &d, r).unwrap_err().to_string();
        assert!(err.contains(&format!("resolution {r}")) && err.contains("112–239"), "{err}");
    }
    let err = spec2feats(&[4; 20], &e, &d, 160).unwrap_err().to_string();
    assert!(err.contains("ks[0] is 4"), "{err}");
    // Inactive slots are ignored whatever they hold, as OFA masks them.
    let mut junk = ks;
    junk[3] = 99;
    assert_eq!(spec2feats(&junk, &e, &d, 160).unwrap(), spec2feats(&ks, &e, &d, 160).unwrap());
    let supernet = common::shared().join("data/ofa/fixture/ofa_mbv3_d234_e346_k357_w1.0_seeded.pth");
    let err = OfaAccuracyPredictor::import(&supernet, "ofa-mbv3-w1.2").err().unwrap().to_string();
    assert!(err.contains("no tensor `0.weight`"), "{err}");
}

/// 20 random w1.2 members and the two facts, written as OFA specs (inactive slots holding
/// real values, which spec2feats must mask), against numpy reading the original .pth itself.
#[test]
fn agrees_with_an_independent_numpy_forward() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(python.exists(), "{} missing: run scripts/setup", python.display());
    let s = w12();
    let p = OfaAccuracyPredictor::import(&pth(), "ofa-mbv3-w1.2").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut gs: Vec<Genome> = (0..20).map(|_| s.sample(&mut rng)).collect();
    gs.push(note10_30ms(&*s));
    gs.push(s.extremes().1);
    let (ks_c, e_c, d_c) = ([3u32, 5, 7], [3u32, 4, 6], [2u32, 3, 4]);
    let specs: Vec<serde_json::Value> = gs
        .iter()
        .enumerate()
        .map(|(m, g)| {
            let d: Vec<u32> = (0..5).map(|i| d_c[g.0[40 + i] as usize]).collect();
            // Canonical genomes hold choice 0 in inactive slots; put other values there, which
            // spec2feats must mask (as OFA's does).
            let active = |i: usize| (i % 4) < d[i / 4] as usize;
            let pick = |c: &[u32; 3], i: usize, gene: u8| c[if active(i) { gene as usize } else { (i + m) % 3 }];
            let ks: Vec<u32> = (0..20).map(|i| pick(&ks_c, i, g.0[i])).collect();
            let e: Vec<u32> = (0..20).map(|i| pick(&e_c, i, g.0[20 + i])).collect();
            serde_json::json!({"ks": ks, "e": e, "d": d, "r": [s.resolution(g)]})
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("hwnas-ofa-acc-numpy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (spec_file, out) = (dir.join("specs.json"), dir.join("preds.json"));
    std::fs::write(&spec_file, serde_json::to_vec(&specs).unwrap()).unwrap();
    let status = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torch_pickle.py"))
        .args(["ofa-forward", pth().to_str().unwrap(), spec_file.to_str().unwrap(), out.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success(), "torch_pickle.py ofa-forward failed");
    let numpy: Vec<f64> = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let refs: Vec<&Genome> = gs.iter().collect();
    let rust = p.predict_batch(&*s, &refs).unwrap();
    for (i, (spec, (&want, &got))) in specs.iter().zip(numpy.iter().zip(&rust)).enumerate() {
        assert!((want - got).abs() < 1e-6, "member {i} {spec}: numpy {want}, rust {got}");
        let field = |k: &str| -> Vec<u32> { serde_json::from_value(spec[k].clone()).unwrap() };
        let r = spec["r"][0].as_u64().unwrap() as u32;
        assert_eq!(p.predict_spec(&field("ks"), &field("e"), &field("d"), r).unwrap(), got, "member {i}");
    }
    assert!((numpy[20] - 0.819671).abs() < 5e-7 && (numpy[21] - 0.835928).abs() < 5e-7, "{numpy:?}");
    std::fs::remove_dir_all(&dir).ok();
}
