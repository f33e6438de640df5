//! FBNet (Wu et al. 2019) on HW-NAS-Bench's measured CIFAR-100 FBNet space: a lookup table per
//! device fitted from 200 measured architectures, then evolution and NSGA-II each find a front
//! of capacity proxy against latency; FBNet-A/B/C (their 22 ops in `fbnet-cifar100`) are placed
//! on the same axes.

use super::common::{fit_split, hw_nas_bench, search, SearchSpec};
use super::fronts_plot::{points, write_fronts, Points};
use super::Setup;
use anyhow::{Context, Result};
use predictors::dataset;
use predictors::split::TrainSize;
use search::objectives::accuracy::CapacityProxy;
use spaces::SearchSpace;

const SPACE: &str = "fbnet-cifar100";
const TRAIN: usize = 200;
const STRATEGIES: [&str; 2] = ["evolution", "nsga2"];
const PRESETS: [&str; 3] = ["fbnet-a", "fbnet-b", "fbnet-c"];

/// A preset's op list as a member of `fbnet-cifar100` (the CIFAR macro has the same 22 layers and ops).
fn preset_in_cifar(space: &dyn SearchSpace, name: &str) -> Result<spaces::Genome> {
    let p = spaces::presets::preset(name)?;
    let v: serde_json::Value = serde_json::from_str(p.json)?;
    let ops = serde_json::json!({ "ops": v["ops"] });
    space.from_json(&ops).with_context(|| format!("{name}'s ops are not a `{SPACE}` member"))
}

pub fn run(cx: &Setup) -> Result<String> {
    let space = spaces::space(SPACE)?;
    let proxy = CapacityProxy::new(&*space);
    let (population, generations) = (cx.population.unwrap_or(50), cx.generations.unwrap_or(30));
    let mut t = format!(
        "## FBNet on HW-NAS-Bench (`{SPACE}`): Pareto fronts of capacity proxy vs latency\n\n\
         Lookup table per device NNLS-fitted on {TRAIN} measured architectures (seed {seed}); target = median \
         measured latency of the device's 5,000 architectures; population {population}, {generations} generations. \
         Accuracy axis: the capacity proxy (mean of normalised ln MACs, ln params, depth — NOT an accuracy).\n\n\
         | device | target ms | lut held-out MAPE % | strategy / network | evaluated | front size | best proxy | its latency ms |\n\
         |---|---|---|---|---|---|---|---|\n",
        seed = cx.seed
    );
    for (device, csv) in hw_nas_bench(&cx.shared) {
        let ds = dataset::load(&csv, Some(SPACE), "latency_ms")?;
        let fitted = fit_split("lut", &ds, TrainSize::Count(TRAIN), cx.seed, Some("error"))?;
        let lut = cx.out.join(format!("{device}-lut.json"));
        fitted.predictor.save(&lut)?;
        let mut measured: Vec<f64> = ds.networks.iter().map(|r| r.value).collect();
        measured.sort_by(f64::total_cmp);
        let target = measured[measured.len() / 2];
        let mape = 100.0 * fitted.metrics.mape;
        let mut fronts: Vec<(&str, Points)> = Vec::new();
        for strategy in STRATEGIES {
            let spec = SearchSpec {
                space: SPACE,
                latency: vec![(device.to_string(), lut.as_path())],
                target_ms: target,
                strategy,
                population,
                generations,
                seed: cx.seed,
                fixed: &[],
            };
            let (_, o) = search(&spec, &cx.out.join(format!("{device}-{strategy}")))?;
            let (best, best_ms) =
                o.best.as_ref().map_or((f64::NAN, f64::NAN), |b| (b.eval.accuracy, b.eval.latency_ms[0]));
            t += &format!(
                "| {device} | {target:.3} | {mape:.2} | {strategy} | {} | {} | {best:.4} | {best_ms:.3} |\n",
                o.evaluated,
                o.front.len()
            );
            fronts.push((strategy, points(&o.front)));
        }
        let mut presets: Vec<(&str, (f64, f64))> = Vec::new();
        for name in PRESETS {
            let net = space.network(&preset_in_cifar(&*space, name)?);
            let ms = fitted.predictor.predict_ms(&net)?;
            let score = proxy.score(&net);
            t += &format!("| {device} | {target:.3} | {mape:.2} | {name} (preset) | – | – | {score:.4} | {ms:.3} |\n");
            presets.push((name, (ms, score)));
        }
        let title = format!("{device}: {SPACE} fronts (target {target:.2} ms)");
        let fronts: Vec<(String, Points)> = fronts.into_iter().map(|(n, p)| (format!("{n} front"), p)).collect();
        let markers: Vec<(String, (f64, f64))> = presets.into_iter().map(|(n, p)| (n.to_string(), p)).collect();
        let x_desc = "predicted latency (ms, lookup table fitted on measurements)";
        write_fronts(&cx.out.join(format!("{device}-fronts")), &title, x_desc, &fronts, &markers, &[target])?;
    }
    t += "\nPlots: `pixel3-fronts.{png,svg}`, `raspi4-fronts.{png,svg}`; each search job's history and plots in `DEVICE-STRATEGY/`.\n";
    Ok(t)
}
