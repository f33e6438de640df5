//! A job whose accuracy comes from a trained supernet checkpoint: candidates are extracted,
//! BN-recalibrated and scored on validation data, and the outputs name the source.

use crate::search_common::*;

use search::config::{AccuracySpec, StrategyConfig};
use search::job::Job;
use search::nn::data::{DataSource, Synthetic};
use search::nn::net::NetSpec;
use search::nn::train::{TrainConfig, Trainer};
use search::objectives::supernet::{SupernetAccuracy, SupernetEval};
use search::objectives::AccuracySource;
use std::sync::Arc;
use tch::Device;

#[test]
fn a_supernet_checkpoint_scores_the_candidates() {
    let _tch = crate::search_common::tch_lock();
    let space = "fbnet-cifar100";
    let ckpt = scratch("supernet-ckpt");
    let data = Synthetic::new(8, 4, 0);
    let spe = data.len() / 8;
    let mut cfg = TrainConfig::new(1, 8, 0.05, vec![32], spe);
    cfg.checkpoint_every = spe;
    let mut t = Trainer::new(NetSpec::Supernet { space: space.into() }, cfg, spe, Device::Cpu).unwrap();
    t.train(&data, None, None, None).unwrap();
    t.save(&ckpt).unwrap();

    let eval = SupernetEval { data: "synthetic:8:4".into(), calib_batches: 1, batch: 8, max_examples: Some(8) };
    let s = spaces::space(space).unwrap();
    let acc = Arc::new(SupernetAccuracy::load(&ckpt, eval.clone(), &*s).unwrap());
    let lat = pixel3_lut();
    let target = median_latency(space, &*lat, 101);
    let mut config = config(space, StrategyConfig::by_name("evolution").unwrap(), 4, 1, 0, target);
    config.sampling_mut().accuracy = AccuracySpec::Supernet { path: ckpt.display().to_string(), eval };
    let dir = scratch("supernet-job");
    let mut job = Job::open(config, vec![lat], acc.clone(), &dir, false).unwrap();
    let out = job.run(None, &mut |_| {}).unwrap().unwrap();
    assert_eq!(out.accuracy_kind, "supernet");
    let best = out.best.unwrap();
    assert!((0.0..=1.0).contains(&best.eval.accuracy));
    // Quantised to whole examples, and reproducible: a second evaluation gives the same number.
    assert_eq!((best.eval.accuracy * 8.0).fract(), 0.0);
    let again = acc.accuracy(&*s, &best.eval.genome, &s.network(&best.eval.genome)).unwrap();
    assert_eq!(again, best.eval.accuracy);
    let best_json = std::fs::read_to_string(dir.join("best.json")).unwrap();
    assert!(best_json.contains("\"kind\": \"supernet\""), "{best_json}");

    // A supernet of another space is refused by name.
    let other = spaces::space("ofa-mbv3-w1.0").unwrap();
    let eval = SupernetEval { data: "synthetic:8:4".into(), calib_batches: 1, batch: 8, max_examples: Some(8) };
    let err = SupernetAccuracy::load(&ckpt, eval, &*other).err().unwrap();
    assert!(crate::search_common::chain(&err).contains("fbnet-cifar100"), "{err:#}");
    let _ = std::fs::remove_dir_all(&ckpt);
    let _ = std::fs::remove_dir_all(&dir);
}
