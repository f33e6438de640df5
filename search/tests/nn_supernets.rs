//! Weight-shared supernets: an extracted OFA/FBNet sub-network reproduces the supernet
//! exactly; Single-Path thresholds receive gradients and decode to the members they select.

use rand::rngs::StdRng;
use rand::SeedableRng;
use search::nn::supernet::fbnet::FbNetSupernet;
use search::nn::supernet::ofa::{OfaSupernet, Phase, Pick};
use search::nn::supernet::singlepath::SinglePathSupernet;
use spaces::Genome;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

/// Gives every tensor of `vs` non-trivial values (BN statistics and kernel transforms
/// included), so that equality tests exercise all of them.
fn scramble(vs: &VarStore) {
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            let noise = t.randn_like() * 0.05;
            if name.ends_with("running_var") {
                t.copy_(&(noise.abs() + 0.5));
            } else {
                let _ = t.g_add_(&noise);
            }
        }
    });
}

#[test]
fn ofa_extracted_subnetwork_matches_the_supernet_exactly() {
    let _tch = crate::search_common::tch_lock();
    // One intra-op thread: tests run in parallel, and oversubscribed OpenMP pools spin.
    tch::set_num_threads(1);
    tch::manual_seed(1);
    let vs = VarStore::new(Device::Cpu);
    let mut sn = OfaSupernet::new(&vs.root(), "ofa-mbv3-w1.0").unwrap();
    scramble(&vs);
    let x = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
    let mut rng = StdRng::seed_from_u64(3);
    for pick in [Pick::Smallest, Pick::Random, Pick::Random, Pick::Largest] {
        let g = sn.sample(Phase::Expand { all: true }, pick, &mut rng);
        sn.active = g.clone();
        let expected = tch::no_grad(|| sn.forward_t(&x, false));
        let sub_vs = VarStore::new(Device::Cpu);
        let model = sn.extract(&sub_vs.root(), &g, 64);
        assert_eq!(search::nn::model::trainable_params(&sub_vs), model.net.params());
        let got = tch::no_grad(|| model.forward_t(&x, false));
        assert_eq!(got.size(), vec![2, 1000]);
        assert!(expected.equal(&got), "{pick:?}: max diff {}", (&expected - &got).abs().max().double_value(&[]));
    }
    // Channel sorting permutes hidden units only: the largest network computes the same function.
    sn.active = sn.sample(Phase::Full, Pick::Largest, &mut rng);
    let before = tch::no_grad(|| sn.forward_t(&x, false));
    sn.sort_channels();
    let after = tch::no_grad(|| sn.forward_t(&x, false));
    assert!(before.allclose(&after, 1e-4, 1e-5, false));
    // Sorting changes smaller sub-networks (they now keep the important channels).
    sn.active = sn.sample(Phase::Expand { all: true }, Pick::Smallest, &mut rng);
    let small = tch::no_grad(|| sn.forward_t(&x, false));
    sn.sort_channels();
    let again = tch::no_grad(|| sn.forward_t(&x, false));
    assert!(small.allclose(&again, 1e-4, 1e-5, false), "sorting twice is a no-op");
}

#[test]
fn ofa_kernel_transform_starts_as_the_centre_crop() {
    let _tch = crate::search_common::tch_lock();
    // One intra-op thread: tests run in parallel, and oversubscribed OpenMP pools spin.
    tch::set_num_threads(1);
    let vs = VarStore::new(Device::Cpu);
    let sn = OfaSupernet::new(&vs.root(), "ofa-mbv3-w1.0").unwrap();
    let layer = sn.full.layers.iter().find(|l| l.name == "stage1.block0").unwrap().clone();
    let mut l3 = layer.clone();
    if let spaces::ir::Op::MbConv(m) = &mut l3.op {
        m.kernel = 3;
    }
    let full = vs.variables()["stage1.block0.dw.conv.weight"].shallow_clone();
    let k3 = &sn.layer_tensors(&l3)["dw.conv.weight"];
    assert_eq!(k3.size()[2..], [3, 3]);
    assert!(k3.equal(&full.narrow(2, 2, 3).narrow(3, 2, 3)), "identity matrices crop the centre");
    assert!(vs.variables().contains_key("stage1.block0.dw.7to5_matrix"));
}

#[test]
fn singlepath_thresholds_get_gradients_and_decode_to_the_selected_member() {
    let _tch = crate::search_common::tch_lock();
    // One intra-op thread: tests run in parallel, and oversubscribed OpenMP pools spin.
    tch::set_num_threads(1);
    tch::manual_seed(2);
    let vs = VarStore::new(Device::Cpu);
    let mut sn = SinglePathSupernet::new(&vs.root());
    let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[3i64, 7]);
    let loss = sn.forward_t(&x, true).cross_entropy_for_logits(&y);
    loss.backward();
    assert_eq!(sn.indicators().len(), 20);
    for (i, t) in sn.thresholds.iter().enumerate() {
        for (name, th) in [("t5x5", &t.t5x5), ("t100c", &t.t100c), ("t50c", &t.t50c)] {
            let skippable = i % 4 != 0;
            if name == "t50c" && !skippable {
                assert!(!th.grad().defined() || th.grad().abs().double_value(&[]) == 0.0);
                continue;
            }
            assert!(th.grad().defined(), "layer {} {name}: no gradient", i + 1);
            assert!(th.grad().abs().double_value(&[]) > 0.0, "layer {} {name}: zero gradient", i + 1);
        }
    }
    // With thresholds at 0 every indicator is on: the largest member (k5e6 everywhere).
    assert_eq!(sn.decode(), Genome(vec![3; 20]));
    let space = spaces::space("singlepath").unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let x = Tensor::randn([1, 3, 32, 32], (Kind::Float, Device::Cpu));
    for _ in 0..4 {
        let g = space.sample(&mut rng);
        sn.set_thresholds_for(&g);
        assert_eq!(sn.decode(), g);
        let by_thresholds = tch::no_grad(|| sn.forward_t(&x, false));
        sn.forced = Some(SinglePathSupernet::settings_for(&g));
        let forced = tch::no_grad(|| sn.forward_t(&x, false));
        sn.forced = None;
        assert!(by_thresholds.equal(&forced), "forced indicators differ from decoded thresholds");
    }
}

#[test]
fn fbnet_mixture_gives_probabilities_and_derives_an_exact_subnetwork() {
    let _tch = crate::search_common::tch_lock();
    // One intra-op thread: tests run in parallel, and oversubscribed OpenMP pools spin.
    tch::set_num_threads(1);
    tch::manual_seed(4);
    let vs = VarStore::new(Device::Cpu);
    let sn = FbNetSupernet::new(&vs.root(), "fbnet-cifar100").unwrap();
    scramble(&vs);
    let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let (logits, probs) = sn.forward_with_probs(&x, true);
    assert_eq!(logits.size(), vec![2, 100]);
    assert_eq!(probs.size(), vec![22, 9]);
    let lut: Vec<[f64; 9]> = (0..22).map(|l| std::array::from_fn(|i| (l * 9 + i) as f64 / 10.0)).collect();
    let expected_latency = FbNetSupernet::expected_latency(&probs, &lut);
    let by_hand: f64 = (0..22)
        .flat_map(|l| (0..9).map(move |i| (l, i)))
        .map(|(l, i)| probs.double_value(&[l as i64, i as i64]) * lut[l][i])
        .sum();
    assert!((expected_latency.double_value(&[]) - by_hand).abs() < 1e-3);
    assert!(probs.sum_dim_intlist(-1, false, Kind::Float).allclose(
        &Tensor::ones([22], (Kind::Float, Device::Cpu)),
        1e-5,
        1e-6,
        false
    ));
    (logits.cross_entropy_for_logits(&Tensor::from_slice(&[1i64, 2])) + expected_latency).backward();
    assert!(sn.theta.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0, "θ gets gradients");

    let g = sn.derive();
    let space = spaces::space("fbnet-cifar100").unwrap();
    space.check(&g).unwrap();
    let expected = tch::no_grad(|| sn.forward_t(&x, false));
    let sub = VarStore::new(Device::Cpu);
    let model = sn.extract(&sub.root(), &g);
    let got = tch::no_grad(|| model.forward_t(&x, false));
    assert!(expected.equal(&got));
}

#[test]
fn every_ofa_space_extracts_exact_subnetworks() {
    let _tch = crate::search_common::tch_lock();
    tch::set_num_threads(1);
    for space in ["ofa-mbv3-w1.2", "ofa-proxyless-w1.3"] {
        let vs = VarStore::new(Device::Cpu);
        let mut sn = OfaSupernet::new(&vs.root(), space).unwrap();
        scramble(&vs);
        let g = sn.sample(Phase::Expand { all: true }, Pick::Random, &mut StdRng::seed_from_u64(8));
        sn.active = g.clone();
        let x = Tensor::randn([1, 3, 40, 40], (Kind::Float, Device::Cpu));
        let expected = tch::no_grad(|| sn.forward_t(&x, false));
        let sub = VarStore::new(Device::Cpu);
        let model = sn.extract(&sub.root(), &g, 40);
        assert!(expected.equal(&tch::no_grad(|| model.forward_t(&x, false))), "{space}");
    }
    let vs = VarStore::new(Device::Cpu);
    let err = OfaSupernet::new(&vs.root(), "mnasnet").err().expect("not an OFA space").to_string();
    assert!(err.contains("not a once-for-all space"), "{err}");
}

#[test]
fn singlepath_runtime_follows_the_lut_and_is_differentiable() {
    let _tch = crate::search_common::tch_lock();
    tch::set_num_threads(1);
    let vs = VarStore::new(Device::Cpu);
    let mut sn = SinglePathSupernet::new(&vs.root());
    // Layer l: R[k5e3] = 1 + l, R[k5e6] = 2 + 2l, R[k3e6] = 1.5 + l.
    let lut: Vec<[f64; 3]> = (0..20).map(|l| [1.0 + l as f64, 2.0 + 2.0 * l as f64, 1.5 + l as f64]).collect();
    let x = Tensor::randn([1, 3, 32, 32], (Kind::Float, Device::Cpu));
    let space = spaces::space("singlepath").unwrap();
    let mut rng = StdRng::seed_from_u64(9);
    for _ in 0..3 {
        let g = space.sample(&mut rng);
        sn.forced = Some(SinglePathSupernet::settings_for(&g));
        let _ = sn.forward_t(&x, true);
        let r = sn.runtime(&lut, 19.6).double_value(&[]);
        let expected: f64 = 19.6
            + g.0
                .iter()
                .enumerate()
                .map(|(l, &o)| match o {
                    0 => lut[l][0] * lut[l][2] / lut[l][1], // k3e3 ≈ R[k5e3]·ρ
                    1 => lut[l][2],
                    2 => lut[l][0],
                    3 => lut[l][1],
                    _ => 0.0,
                })
                .sum::<f64>();
        assert!((r - expected).abs() < 1e-3, "{r} vs {expected}");
    }
    sn.forced = None;
    let _ = sn.forward_t(&x, true);
    sn.runtime(&lut, 19.6).log().backward();
    assert!(sn.thresholds[1].t50c.grad().abs().double_value(&[]) > 0.0, "runtime gradient reaches the thresholds");
}
