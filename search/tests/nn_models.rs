//! Every preset materialises with the IR's parameter count and tensor names, classifies a
//! 224x224 image into 1000 logits, and survives a TorchScript round-trip unchanged.

use search::nn::model::{check_names, trainable_params, Model};
use search::nn::torchscript;
use spaces::presets::PRESETS;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

#[test]
fn presets_match_the_ir_and_round_trip_through_torchscript() {
    let _tch = crate::search_common::tch_lock();
    // One intra-op thread: tests run in parallel, and oversubscribed OpenMP pools spin.
    tch::set_num_threads(1);
    tch::manual_seed(0);
    let dir = std::env::temp_dir().join(format!("hwnas-nn-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for p in PRESETS {
        let net = p.arch().network(None);
        let vs = VarStore::new(Device::Cpu);
        let model = Model::new(&vs.root(), &net);
        assert_eq!(trainable_params(&vs), net.params(), "{}: trainable parameters", p.name);
        check_names(&vs, &net).unwrap_or_else(|e| panic!("{}: {e}", p.name));

        let x = Tensor::randn([1, 3, 224, 224], (Kind::Float, Device::Cpu));
        let y = tch::no_grad(|| model.forward_t(&x, false));
        assert_eq!(y.size(), vec![1, 1000], "{}", p.name);

        let path = dir.join(format!("{}.pt", p.name));
        torchscript::export(&model, 224, Device::Cpu, &path).unwrap();
        let loaded = torchscript::load(&path, Device::Cpu).unwrap();
        let z = tch::no_grad(|| loaded.forward_ts(&[&x]).unwrap());
        assert!(y.equal(&z), "{}: TorchScript output differs by {}", p.name, (&y - &z).abs().max().double_value(&[]));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn weights_round_trip_between_tch_and_the_ir() {
    let _tch = crate::search_common::tch_lock();
    // One intra-op thread: tests run in parallel, and oversubscribed OpenMP pools spin.
    tch::set_num_threads(1);
    let net = spaces::presets::preset("mnasnet-a1").unwrap().arch().network(Some(64));
    let vs = VarStore::new(Device::Cpu);
    let model = Model::new(&vs.root(), &net);
    let w = model.to_weights().unwrap();
    w.check(&net).unwrap();
    assert_eq!(search::nn::weights::from_var_store(&vs).unwrap(), w);
    let vs2 = VarStore::new(Device::Cpu);
    let copy = Model::from_weights(&vs2.root(), &net, &w).unwrap();
    let x = Tensor::randn([1, 3, 64, 64], (Kind::Float, Device::Cpu));
    assert!(tch::no_grad(|| model.forward_t(&x, false).equal(&copy.forward_t(&x, false))));
    let other = spaces::presets::preset("mnasnet-b1").unwrap().arch().network(Some(64));
    let err = Model::from_weights(&vs2.root(), &other, &w).expect_err("mismatched weights are rejected");
    assert!(crate::search_common::chain(&err).contains("do not fit"), "{err:#}");
}
