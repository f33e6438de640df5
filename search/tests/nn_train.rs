//! Training on the synthetic source: the loss of a supernet goes down, a run stopped and
//! resumed from its checkpoint ends with exactly the weights of an uninterrupted run, and
//! BN re-calibration plus evaluation report sensible accuracies.

use search::nn::data::{DataSource, Synthetic};
use search::nn::net::{Net, NetSpec};
use search::nn::train::{try_evaluate, try_recalibrate_bn, TrainConfig, Trainer};
use tch::nn::{ModuleT, VarStore};
use tch::Device;

fn config(epochs: usize, batch: usize, lr: f64, spe: usize) -> TrainConfig {
    let mut c = TrainConfig::new(epochs, batch, lr, vec![32, 40], spe);
    c.checkpoint_every = 2;
    c.sandwich_random = 1;
    c
}

/// torch's RNG is process-global and every training step reseeds it, so tests that train
/// must not interleave; they also use one intra-op thread (oversubscribed OpenMP pools spin).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    tch::set_num_threads(1);
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

#[test]
fn ofa_supernet_loss_decreases_on_synthetic_data() {
    let _tch = crate::search_common::tch_lock();
    let _serial = serial();
    let data = Synthetic::new(16, 4, 7);
    let spe = data.len() / 8;
    let spec = NetSpec::Supernet { space: "ofa-mbv3-w1.0".into() };
    let mut t = Trainer::new(spec, config(8, 8, 0.05, spe), spe, Device::Cpu).unwrap();
    let losses = t.train(&data, None, None, None).unwrap();
    assert_eq!(losses.len(), 16);
    let (first, last) = (mean(&losses[..3]), mean(&losses[13..]));
    assert!(last < 0.8 * first, "loss did not decrease: {first:.3} -> {last:.3} ({losses:?})");
}

#[test]
fn fixed_network_trains_recalibrates_and_evaluates() {
    let _tch = crate::search_common::tch_lock();
    let _serial = serial();
    let data = Synthetic::new(32, 4, 9);
    let arch = spaces::presets::preset("fbnet-c").unwrap().arch().to_json();
    let spec = NetSpec::Fixed { space: "fbnet".into(), arch };
    let spe = data.len() / 8;
    let mut t = Trainer::new(spec, config(6, 8, 0.01, spe), spe, Device::Cpu).unwrap();
    let losses = t.train(&data, None, None, None).unwrap();
    assert!(mean(&losses[losses.len() - 3..]) < mean(&losses[..3]), "{losses:?}");
    let Net::Fixed(model) = &mut t.net else { panic!("fixed network") };
    try_recalibrate_bn(model, &data, 32, 4, 8, 0).unwrap();
    let acc = try_evaluate(&|x| model.forward_t(x, false), &data, 32, 8, None, Device::Cpu).unwrap();
    assert_eq!(acc.examples, 32);
    assert!(acc.top5 >= acc.top1 && acc.top1 > 0.25, "{acc:?}");
}

#[test]
fn killed_run_resumes_exactly_where_it_stopped() {
    let _tch = crate::search_common::tch_lock();
    let _serial = serial();
    let data = Synthetic::new(16, 4, 11);
    let spe = data.len() / 4;
    let spec = NetSpec::Supernet { space: "ofa-mbv3-w1.0".into() };
    let cfg = config(2, 4, 0.02, spe);

    let mut straight = Trainer::new(spec.clone(), cfg.clone(), spe, Device::Cpu).unwrap();
    straight.train(&data, None, None, None).unwrap();

    let dir = std::env::temp_dir().join(format!("hwnas-nn-resume-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    let mut first = Trainer::new(spec, cfg, spe, Device::Cpu).unwrap();
    first.train(&data, Some(&dir), Some(5), None).unwrap();
    drop(first); // the "kill": nothing but the checkpoint survives
    let mut resumed = Trainer::resume(&dir, Device::Cpu).unwrap();
    // Checkpoints every 2 steps and at the stop: the stop at step 5 is the latest.
    assert_eq!(resumed.step, 5);
    resumed.train(&data, Some(&dir), None, None).unwrap();
    assert_eq!(resumed.step, 8);

    let a = straight.vs.variables();
    let b = resumed.vs.variables();
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "{name} differs after resume");
    }
    let step_dirs = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("step-"))
        .count();
    assert_eq!(step_dirs, 1, "older step directories are removed");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_checkpoint_with_a_missing_weights_file_is_an_error() {
    let _tch = crate::search_common::tch_lock();
    let _serial = serial();
    let dir = std::env::temp_dir().join(format!("hwnas-nn-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert!(Trainer::resume(&dir, Device::Cpu).is_err(), "empty directory");
    std::fs::write(dir.join("checkpoint.json"), "{not json").unwrap();
    let err = Trainer::resume(&dir, Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("not an hwnas checkpoint"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
    let vs = VarStore::new(Device::Cpu);
    drop(vs);
}
