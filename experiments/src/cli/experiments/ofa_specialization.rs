//! Once-for-all specialisation (Cai et al. 2020): one `ofa-mbv3-w1.0` space, several latency
//! targets, one constrained evolution each. The latency source needs no phone: this machine's
//! CPU, profiled (once, cached, resumable) into a lookup table of the space's layers at ONE
//! resolution — the same `hwnas profile` path `hwnas search` takes without --latency, restricted
//! to that resolution because profiling all 25 takes far longer than an experiment should.

use super::common::{search, SearchSpec};
use super::fronts_plot::{points, write_fronts, Points};
use super::Setup;
use anyhow::{Context, Result};
use latency::modelfile::Precision;

const SPACE: &str = "ofa-mbv3-w1.0";
/// The profiled resolution (the space's smallest, so the table profiles fastest).
const RESOLUTION: u32 = 128;
/// Targets as fractions of the way from the smallest to the largest member's latency at RESOLUTION.
const TARGET_FRACTIONS: [f64; 3] = [0.25, 0.5, 0.75];

pub fn run(cx: &Setup) -> Result<String> {
    let table = super::super::local_lut::cached_local_lut(SPACE, Some(&[RESOLUTION]), Precision::Fp32)?;
    let lut_path = table.path;
    let lut = predictors::load_predictor(&lut_path)?;
    let space = spaces::space(SPACE)?;
    let (small, large) = space.extremes();
    let lo = lut.predict_ms(&space.network_at(&small, RESOLUTION))?;
    let hi = lut.predict_ms(&space.network_at(&large, RESOLUTION))?;
    let (population, generations) = (cx.population.unwrap_or(30), cx.generations.unwrap_or(20));
    let resolution = RESOLUTION.to_string();
    let mut t = format!(
        "## OFA specialisation: `{SPACE}` at {RESOLUTION}x{RESOLUTION} on this machine's CPU (local lookup table)\n\n\
         Table: {} (timed by {}, 1 thread); smallest member {lo:.3} ms, largest {hi:.3} ms at {RESOLUTION}. \
         One OFA constrained evolution per target (population {population}, {generations} generations, seed {}), \
         resolution gene fixed at {RESOLUTION} (`\"fixed\": {{\"r\": \"{RESOLUTION}\"}}`); accuracy axis: capacity proxy (NOT an accuracy).\n\n\
         | target ms | evaluated | best latency ms | best proxy | best MACs | front size | best architecture |\n\
         |---|---|---|---|---|---|---|\n",
        lut_path.display(),
        table.timed_by,
        cx.seed
    );
    let mut fronts: Vec<(String, Points)> = Vec::new();
    let mut targets = Vec::new();
    for f in TARGET_FRACTIONS {
        let target = ((lo + f * (hi - lo)) * 100.0).round() / 100.0;
        let spec = SearchSpec {
            space: SPACE,
            latency: vec![("local".into(), lut_path.as_path())],
            target_ms: target,
            strategy: "evolution",
            population,
            generations,
            seed: cx.seed,
            fixed: &[("r", &resolution)],
        };
        let dir = cx.out.join(format!("target-{target}ms"));
        let (_, o) = search(&spec, &dir)?;
        let b = o.best.as_ref().with_context(|| format!("no member met the {target} ms target"))?;
        let net = space.network(&b.eval.genome);
        t += &format!(
            "| {target} | {} | {:.3} | {:.4} | {:.1}M | {} | `{}` |\n",
            o.evaluated,
            b.eval.latency_ms[0],
            b.eval.accuracy,
            net.macs() as f64 / 1e6,
            o.front.len(),
            space.to_json(&b.eval.genome)
        );
        fronts.push((format!("target {target} ms"), points(&o.front)));
        targets.push(target);
    }
    let title = format!("{SPACE} at {RESOLUTION}: fronts per latency target (this CPU)");
    write_fronts(
        &cx.out.join("fronts"),
        &title,
        "latency on this CPU (ms, local lookup table)",
        &fronts,
        &[],
        &targets,
    )?;
    t += "\nPlots: `fronts.{png,svg}`; each job's history and plots in `target-*ms/`.\n";
    Ok(t)
}
