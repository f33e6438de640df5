//! OFA's own supernet checkpoints in hwnas's OFA supernet: the fixture made with OFA's code
//! (`shared/data/ofa/fixture`) reproduces OFA's logits for three sub-networks, bad files are
//! refused with messages naming the problem, and the name mapping of the spaces without a
//! fixture (w1.2, proxyless-w1.3) round-trips.

use search::nn::supernet::ofa::OfaSupernet;
use search::nn::supernet::ofa_checkpoint::{self, OfaCheckpoint};
use serde_json::Value;
use spaces::ir::Weights;
use std::path::{Path, PathBuf};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ofa/fixture")
}

fn fixture() -> PathBuf {
    fixture_dir().join("ofa_mbv3_d234_e346_k357_w1.0_seeded.pth")
}

/// The fixture's input: x[0, c, h, w] = sin(0.1c + 0.05h + 0.03w), computed in f64 like
/// make_fixture.py, then rounded to f32.
fn input(r: i64) -> Tensor {
    let opts = (Kind::Double, Device::Cpu);
    let c = Tensor::arange(3, opts).view([3, 1, 1]);
    let h = Tensor::arange(r, opts).view([1, r, 1]);
    let w = Tensor::arange(r, opts).view([1, 1, r]);
    (c * 0.1 + h * 0.05 + w * 0.03).sin().to_kind(Kind::Float).unsqueeze(0)
}

fn reference_cases() -> Vec<Value> {
    let text = std::fs::read_to_string(fixture_dir().join("reference_logits.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn max_diff(a: &Tensor, b: &[f32]) -> f64 {
    (a - Tensor::from_slice(b).view(a.size().as_slice())).abs().max().double_value(&[])
}

#[test]
fn the_fixture_reproduces_ofa_logits_through_the_supernet_and_its_extracted_subnetworks() {
    let _tch = crate::search_common::tch_lock();
    tch::set_num_threads(1);
    let ck = OfaCheckpoint::read(&fixture(), None).unwrap();
    assert_eq!(ck.space, "ofa-mbv3-w1.0", "the space is recognised from the tensors");
    let (_vs, mut sn) = ck.supernet(Device::Cpu).unwrap();
    let cases = reference_cases();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let g = sn.space.from_json(&case["arch"]).unwrap();
        let r = sn.space.resolution(&g);
        let expected: Vec<f32> =
            case["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        sn.active = g.clone();
        let x = input(r as i64);
        let got = tch::no_grad(|| sn.forward_t(&x, false));
        let d = max_diff(&got, &expected);
        assert!(d < 1e-4, "{name}: the supernet's logits differ from OFA's by {d}");
        let sub_vs = VarStore::new(Device::Cpu);
        let model = sn.extract(&sub_vs.root(), &g, r);
        let got = tch::no_grad(|| tch::nn::ModuleT::forward_t(&model, &x, false));
        let d = max_diff(&got, &expected);
        assert!(d < 1e-4, "{name}: the extracted sub-network's logits differ from OFA's by {d}");
    }
}

fn fixture_state_dict() -> Weights {
    ofa_checkpoint::read_state_dict(&fixture()).unwrap()
}

fn refusal(sd: &Weights, space: &str) -> String {
    crate::search_common::chain(&ofa_checkpoint::to_supernet_weights("test.pth", sd, space).unwrap_err())
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hwnas-ofa-checkpoint-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_fixture_is_recognised_by_content_and_named_exactly_as_hwnas_maps_it() {
    let _tch = crate::search_common::tch_lock();
    assert!(ofa_checkpoint::is_torch_file(&fixture()));
    assert!(!ofa_checkpoint::is_torch_file(&fixture_dir()), "a directory is an hwnas checkpoint");
    assert!(!ofa_checkpoint::is_torch_file(&fixture_dir().join("reference_logits.json")));
    // Every OFA name the mapping produces is one of the fixture's, and vice versa.
    let ours: Vec<String> = ofa_checkpoint::mapping("ofa-mbv3-w1.0").unwrap().into_iter().map(|e| e.ofa).collect();
    let theirs: Vec<String> = fixture_state_dict().iter().map(|(n, _)| n.to_string()).collect();
    let (mut a, mut b) = (ours.clone(), theirs.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn a_truncated_file_is_refused_naming_it() {
    let _tch = crate::search_common::tch_lock();
    let bytes = std::fs::read(fixture()).unwrap();
    let path = scratch("truncated").join("cut.pth");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err =
        crate::search_common::chain(&OfaCheckpoint::read(&path, None).err().expect("a truncated file is refused"));
    assert!(err.contains("cut.pth"), "{err}");
}

#[test]
fn a_checkpoint_of_another_width_or_family_is_refused_saying_what_it_is() {
    let _tch = crate::search_common::tch_lock();
    let sd = fixture_state_dict();
    let err = refusal(&sd, "ofa-mbv3-w1.2");
    assert!(
        err.contains("OFA-MobileNetV3")
            && err.contains("fits `ofa-mbv3-w1.0`")
            && err.contains("not an `ofa-mbv3-w1.2`"),
        "{err}"
    );
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    OfaSupernet::new(&vs.root(), "ofa-proxyless-w1.3").unwrap();
    let proxyless = ofa_checkpoint::to_state_dict("ofa-proxyless-w1.3", &vs).unwrap();
    let err = refusal(&proxyless, "ofa-mbv3-w1.0");
    assert!(err.contains("OFA-ProxylessNAS") && err.contains("fits `ofa-proxyless-w1.3`"), "{err}");
}

#[test]
fn a_wrong_shape_a_missing_and_a_stray_tensor_are_named() {
    let _tch = crate::search_common::tch_lock();
    let sd = fixture_state_dict();
    let name = "blocks.5.conv.depth_conv.se.fc.reduce.weight";
    let mut bad = Weights::new();
    for (n, t) in sd.iter() {
        if n == name {
            bad.insert(n, vec![32, 144, 1, 1], vec![0.0; 32 * 144]).unwrap();
        } else {
            bad.insert(n, t.shape.clone(), t.data.clone()).unwrap();
        }
    }
    let err = refusal(&bad, "ofa-mbv3-w1.0");
    assert!(err.contains(name) && err.contains("[32, 144, 1, 1]") && err.contains("[40, 144, 1, 1]"), "{err}");

    let mut missing = Weights::new();
    for (n, t) in sd.iter().filter(|(n, _)| !n.starts_with("blocks.7.conv.depth_conv.conv.")) {
        missing.insert(n, t.shape.clone(), t.data.clone()).unwrap();
    }
    let err = refusal(&missing, "ofa-mbv3-w1.0");
    for n in ["blocks.7.conv.depth_conv.conv.conv.weight", "blocks.7.conv.depth_conv.conv.7to5_matrix"] {
        assert!(err.contains(n) && err.contains("3 of the"), "{err}");
    }

    let mut stray = sd.clone();
    stray.insert("blocks.21.conv.point_linear.conv.conv.weight", vec![1], vec![0.0]).unwrap();
    let err = refusal(&stray, "ofa-mbv3-w1.0");
    assert!(err.contains("does not have: blocks.21.conv.point_linear.conv.conv.weight"), "{err}");
}

/// Gives every variable distinct random values, so that a swapped mapping cannot go unnoticed.
fn scramble(vs: &VarStore) {
    tch::no_grad(|| {
        for (_, mut t) in vs.variables() {
            t.copy_(&t.rand_like());
        }
    });
}

#[test]
fn spaces_without_a_fixture_round_trip_through_ofa_names_old_and_new() {
    let _tch = crate::search_common::tch_lock();
    tch::set_num_threads(1);
    for space in ["ofa-mbv3-w1.2", "ofa-proxyless-w1.3"] {
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        OfaSupernet::new(&vs.root(), space).unwrap();
        scramble(&vs);
        let sd = ofa_checkpoint::to_state_dict(space, &vs).unwrap();
        assert_eq!(sd.len(), vs.variables().len());
        let last = if space.starts_with("ofa-proxyless") { "blocks.21" } else { "blocks.20" };
        for n in [
            "first_conv.conv.weight",
            "blocks.0.conv.depth_conv.bn.running_var",
            "blocks.1.conv.depth_conv.conv.5to3_matrix",
            &format!("{last}.conv.inverted_bottleneck.bn.bn.running_mean"),
            "classifier.linear.bias",
        ] {
            assert!(sd.get(n).is_some(), "{space}: no {n}");
        }
        // OFA's older releases: `mobile_inverted_conv` and un-nested BN/conv/linear names.
        let mut old = Weights::new();
        for (n, t) in sd.iter() {
            let n = match n.split_once(".conv.") {
                Some((block, rest)) if block.starts_with("blocks.") => format!("{block}.mobile_inverted_conv.{rest}"),
                _ => n.to_string(),
            };
            let n = n.replace(".bn.bn.", ".bn.").replace(".conv.conv.weight", ".conv.weight");
            old.insert(format!("module.{n}"), t.shape.clone(), t.data.clone()).unwrap();
        }
        for (what, dict) in [("current", &sd), ("old", &old)] {
            let w = ofa_checkpoint::to_supernet_weights("synthetic.pth", dict, space).unwrap();
            let back = VarStore::new(Device::Cpu);
            OfaSupernet::new(&back.root(), space).unwrap();
            let ck = OfaCheckpoint { space: space.to_string(), weights: w };
            ck.copy_into(&back).unwrap();
            let orig = vs.variables();
            for (n, t) in back.variables() {
                assert!(t.equal(&orig[&n]), "{space} ({what} names): {n} changed in the round trip");
            }
        }
    }
}

#[test]
fn the_supernet_accuracy_objective_takes_an_ofa_checkpoint_of_its_space_only() {
    let _tch = crate::search_common::tch_lock();
    use search::objectives::supernet::{SupernetAccuracy, SupernetEval};
    use search::objectives::AccuracySource;
    tch::set_num_threads(1);
    let eval = SupernetEval { data: "synthetic:2:10".into(), calib_batches: 0, batch: 2, max_examples: Some(2) };
    let space = spaces::space("ofa-mbv3-w1.0").unwrap();
    let acc = SupernetAccuracy::load(&fixture(), eval.clone(), &*space).unwrap();
    let (smallest, _) = space.extremes();
    let net = space.network(&smallest);
    let top1 = acc.accuracy(&*space, &smallest, &net).unwrap();
    assert!((0.0..=1.0).contains(&top1), "{top1}");
    let other = spaces::space("ofa-mbv3-w1.2").unwrap();
    let err = crate::search_common::chain(&SupernetAccuracy::load(&fixture(), eval, &*other).err().expect("refused"));
    assert!(err.contains("fits `ofa-mbv3-w1.0`") && err.contains("not an `ofa-mbv3-w1.2`"), "{err}");
}
