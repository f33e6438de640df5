//! Differentiable searches (FBNet DNAS, Single-Path NAS) on tiny synthetic data: the latency
//! weight moves the result, the result is a valid member, the Pixel 1 runtime reproduces the
//! table's sums, and a killed job resumes to the uninterrupted history.

mod search_common;

use predictors::LatencyPredictor;
use search::config::LatencySpec;
use search::dnas::{DnasConfig, DnasJob, DnasMethod, FbNetConfig, SinglePathConfig};
use search::nn::supernet::singlepath::SinglePathSupernet;
use search_common::{fitted_lut, scratch, shared_data};
use spaces::Genome;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tch::nn::VarStore;
use tch::{Device, Tensor};

fn pixel3_lut_file(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("pixel3-lut.json");
    fitted_lut("pixel3").save(&path).unwrap();
    path
}

fn pixel1_file(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("pixel1.json");
    let p = predictors::spnas::SinglePathPredictor::import(&shared_data().join("single-path-pixel1-lut.json")).unwrap();
    p.save(&path).unwrap();
    path
}

fn fbnet_config(lut: &Path, beta: f64, epochs: usize) -> DnasConfig {
    DnasConfig {
        space: "fbnet-cifar100".into(),
        method: DnasMethod::Fbnet(FbNetConfig { beta, arch_lr: 0.2, ..Default::default() }),
        latency: LatencySpec { label: "pixel3".into(), path: lut.display().to_string() },
        max_latency_ms: 100.0,
        data: "synthetic:20:10".into(),
        epochs,
        warmup_epochs: 0,
        batch: 4,
        resolution: 32,
        lr: 0.05,
        seed: 3,
    }
}

/// libtorch's generator (initial weights, Gumbel noise) is global: one search at a time keeps them reproducible.
static TORCH: Mutex<()> = Mutex::new(());

fn run(config: DnasConfig, dir: &Path) -> DnasJob {
    let mut job = DnasJob::open(config, dir, false).unwrap();
    job.run(None, &mut |_| {}).unwrap();
    job
}

#[test]
fn fbnet_higher_beta_gives_faster_valid_architecture() {
    let _torch = TORCH.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let root = scratch("dnas-fbnet");
    let lut = pixel3_lut_file(&root);
    let low = run(fbnet_config(&lut, 0.0, 2), &root.join("beta0"));
    let high = run(fbnet_config(&lut, 20.0, 2), &root.join("beta20"));
    let (l, h) = (low.history.last().unwrap(), high.history.last().unwrap());
    assert!(
        h.expected_latency_ms < l.expected_latency_ms - 0.05,
        "beta 20: {} ms, beta 0: {} ms",
        h.expected_latency_ms,
        l.expected_latency_ms
    );
    assert!(h.latency_ms < l.latency_ms, "derived: beta 20 {} ms, beta 0 {} ms", h.latency_ms, l.latency_ms);
    let space = spaces::space("fbnet-cifar100").unwrap();
    for r in [l, h] {
        let g = space.from_json(&r.arch).unwrap();
        space.check(&g).unwrap();
    }
    for f in
        ["config.json", "log.txt", "history.jsonl", "best.json", "loss.png", "loss.svg", "latency.png", "latency.svg"]
    {
        assert!(root.join("beta20").join(f).exists(), "missing {f}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn fbnet_resume_after_kill_matches_uninterrupted_run() {
    let _torch = TORCH.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let root = scratch("dnas-resume");
    let lut = pixel3_lut_file(&root);
    let whole = run(fbnet_config(&lut, 0.6, 2), &root.join("whole"));
    let dir = root.join("killed");
    DnasJob::open(fbnet_config(&lut, 0.6, 2), &dir, false).unwrap().run(Some(1), &mut |_| {}).unwrap();
    assert!(DnasJob::open(fbnet_config(&lut, 0.6, 2), &dir, false).is_err(), "a second start must not overwrite");
    let mut resumed = DnasJob::open(fbnet_config(&lut, 0.6, 2), &dir, true).unwrap();
    assert_eq!(resumed.next_epoch, 1);
    resumed.run(None, &mut |_| {}).unwrap();
    let strip = |h: &[search::dnas::EpochRecord]| -> Vec<_> {
        h.iter().map(|r| (r.arch.clone(), r.train_loss, r.expected_latency_ms)).collect()
    };
    assert_eq!(strip(&resumed.history), strip(&whole.history));
    let _ = std::fs::remove_dir_all(&root);
}

fn singlepath_config(lut: &Path, lambda: f64) -> DnasConfig {
    DnasConfig {
        space: "singlepath".into(),
        method: DnasMethod::Singlepath(SinglePathConfig { lambda, threshold_lr: 1.0 }),
        latency: LatencySpec { label: "pixel1".into(), path: lut.display().to_string() },
        max_latency_ms: 200.0,
        data: "synthetic:20:10".into(),
        epochs: 3,
        warmup_epochs: 0,
        batch: 4,
        resolution: 32,
        lr: 0.05,
        seed: 1,
    }
}

#[test]
fn singlepath_higher_lambda_gives_faster_valid_architecture() {
    let _torch = TORCH.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let root = scratch("dnas-singlepath");
    let lut = pixel1_file(&root);
    let low = run(singlepath_config(&lut, 0.0), &root.join("lambda0"));
    let high = run(singlepath_config(&lut, 5.0), &root.join("lambda5"));
    let (l, h) = (low.history.last().unwrap(), high.history.last().unwrap());
    assert!(h.latency_ms < l.latency_ms - 1.0, "lambda 5: {} ms, lambda 0: {} ms", h.latency_ms, l.latency_ms);
    let space = spaces::space("singlepath").unwrap();
    for r in [l, h] {
        space.check(&space.from_json(&r.arch).unwrap()).unwrap();
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn singlepath_pixel1_runtime_matches_the_table_sums() {
    let p = predictors::spnas::SinglePathPredictor::import(&shared_data().join("single-path-pixel1-lut.json")).unwrap();
    let (lut, constant) = search::dnas::singlepath_lut(&p);
    let vs = VarStore::new(Device::Cpu);
    let mut net = SinglePathSupernet::new(&vs.root());
    let x = Tensor::zeros([1, 3, 32, 32], (tch::Kind::Float, Device::Cpu));
    for (op, want) in [(3u8, 131.458), (0u8, 65.636)] {
        net.forced = Some(SinglePathSupernet::settings_for(&Genome(vec![op; 20])));
        let _ = net.forward_t(&x, false);
        let r = net.runtime(&lut, constant).double_value(&[]);
        assert!((r - want).abs() < 0.01, "op {op}: R = {r} ms, table {want} ms");
    }
}
