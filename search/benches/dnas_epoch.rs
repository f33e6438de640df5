//! Search-epoch time of the FBNet DNAS supernet (`fbnet-cifar100`, all 9 candidate ops mixed
//! in each of the 22 layers) at batch 64 on 32×32 input: one epoch of `search::dnas` =
//! weight steps on 80 % of the data, then θ steps on the other 20 %, then the derived
//! member's BN re-calibration and validation. Runs on CUDA when libtorch sees a GPU, else
//! on the CPU, and prints which.
//!
//! Run: `cargo bench -p search --bench dnas_epoch` (release profile). Optional argument:
//! `-- EXAMPLES` (default 640: 8 weight steps + 2 θ steps). The data are synthetic (timing
//! does not depend on pixel values); the latency table is fitted to HW-NAS-Bench's Pixel 3
//! measurements in `../shared/data` (real).

use predictors::LatencyPredictor;
use search::config::{DnasMethod, FbNetConfig, JobConfig, LatencySpec};
use search::dnas::DnasJob;
use spaces::ir::Network;
use std::path::Path;

fn main() {
    let examples: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(640);
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    let csv = shared.join("hw-nas-bench-fbnet/fbnet_cifar100_pixel3.csv");
    let ds = predictors::dataset::load(&csv, Some("fbnet-cifar100"), "latency_ms").expect("HW-NAS-Bench dataset");
    let nets: Vec<&Network> = ds.networks.iter().map(|r| &r.network).collect();
    let ms: Vec<f64> = ds.networks.iter().map(|r| r.value).collect();
    let lut = predictors::lut::fit_networks(csv.display().to_string(), &nets, &ms, ds.coverage(), Default::default())
        .expect("fit");
    let dir = std::env::temp_dir().join(format!("hwnas-dnas-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lut_path = dir.join("pixel3-lut.json");
    lut.save(&lut_path).unwrap();
    let batch = 64;
    let latency = LatencySpec { label: "pixel3".into(), path: lut_path.display().to_string(), measure: None };
    let data = format!("synthetic:{examples}:100");
    let mut config =
        JobConfig::differentiable("fbnet-cifar100", latency, 20.0, DnasMethod::Fbnet(FbNetConfig::default()), &data)
            .unwrap();
    let d = config.dnas_mut();
    (d.epochs, d.warmup_epochs, d.batch, d.resolution, d.lr, d.calib_batches) = (1, 0, batch, 32, 0.1, 2);
    let job_dir = dir.join("job");
    let mut job = DnasJob::open(config, &job_dir, false).unwrap();
    let device = job.device();
    let rec = job.epoch().unwrap();
    let (w_steps, a_steps) = ((examples - examples / 5) / batch, (examples / 5) / batch);
    let per_step = (rec.seconds - rec.derived_eval_seconds) / (w_steps + a_steps) as f64;
    println!(
        "fbnet-cifar100 DNAS epoch, batch {batch} at 32x32 on {device:?} ({} CPU threads): {examples} examples = {w_steps} weight steps + {a_steps} θ steps + validation in {:.2} s ({:.3} s per step; derived member's BN re-calibration and validation {:.2} s of it)",
        tch::get_num_threads(),
        rec.seconds,
        per_step,
        rec.derived_eval_seconds
    );
    let (cw, ca) = (40_000 / batch, 10_000 / batch);
    println!(
        "  a CIFAR-100 search epoch (40,000 weight / 10,000 θ images = {cw} + {ca} steps) ≈ {:.0} s at this rate",
        per_step * (cw + ca) as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
}
