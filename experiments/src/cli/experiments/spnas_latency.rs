//! Single-Path NAS (Stamoulis et al. 2019): the Pixel 1 runtime model (R = 19.5999 + Σ R_l)
//! imported from the paper's table, evaluated on the paper's final network and the space's
//! extremes, then used as the latency objective of a search in `singlepath` under 80 ms.

use super::common::{search, SearchSpec};
use super::Setup;
use anyhow::Result;
use predictors::spnas::SinglePathPredictor;
use predictors::LatencyPredictor;
use spaces::{presets, Genome};

/// The paper's runtime target and the latency it reports for its final network (Pixel 1).
const TARGET_MS: f64 = 80.0;
const PAPER_SPNASNET_MS: f64 = 79.0;

pub fn run(cx: &Setup) -> Result<String> {
    let p = SinglePathPredictor::import(&cx.shared.join("data/single-path-pixel1-lut.json"))?;
    let lut = cx.out.join("spnas-pixel1.json");
    p.save(&lut)?;
    let s = spaces::space("singlepath")?;
    let rows = [
        (
            "spnasnet (paper's final network)",
            presets::preset("spnasnet")?.arch().network(None),
            Some(PAPER_SPNASNET_MS),
        ),
        ("all k5_e6 (largest)", s.network(&Genome(vec![3; 20])), None),
        ("all k3_e3", s.network(&Genome(vec![0; 20])), None),
        ("smallest (k3_e3 then skip)", s.network(&s.extremes().0), None),
    ];
    let mut t = String::from(
        "## Single-Path NAS: Pixel 1 runtime model (R = 19.5999 ms + Σ per-layer runtime)\n\n\
         | network | MACs | predicted ms | paper ms |\n|---|---|---|---|\n",
    );
    for (name, net, paper) in &rows {
        let paper = paper.map_or("–".to_string(), |v| format!("{v}"));
        t += &format!("| {name} | {:.1}M | {:.3} | {paper} |\n", net.macs() as f64 / 1e6, p.predict_ms(net)?);
    }
    let (population, generations) = (cx.population.unwrap_or(50), cx.generations.unwrap_or(30));
    let spec = SearchSpec {
        space: "singlepath",
        latency: vec![("pixel1".into(), lut.as_path())],
        target_ms: TARGET_MS,
        strategy: "evolution",
        population,
        generations,
        seed: cx.seed,
        fixed: &[],
    };
    let (_, o) = search(&spec, &cx.out.join("search"))?;
    t += &format!(
        "\n## Evolution in `singlepath` under {TARGET_MS} ms (Pixel 1 model)\n\n\
         OFA constrained evolution, population {population}, {generations} generations, seed {}; \
         accuracy axis: {} ({}).\n\n",
        cx.seed, o.accuracy_kind, o.accuracy_description
    );
    t += "| quantity | value |\n|---|---|\n";
    t += &format!("| evaluated architectures | {} |\n", o.evaluated);
    t += &format!("| smallest reachable latency | {:.3} ms |\n", o.fastest.latency_ms);
    match &o.best {
        Some(b) => {
            let net = s.network(&b.eval.genome);
            t += &format!("| best architecture | `{}` |\n", s.to_json(&b.eval.genome));
            t += &format!("| best latency (Pixel 1 model) | {:.3} ms |\n", b.eval.latency_ms[0]);
            t += &format!("| best {} | {:.5} |\n", o.accuracy_kind, b.eval.accuracy);
            t += &format!("| best MACs | {:.1}M |\n", net.macs() as f64 / 1e6);
            let proxy = search::objectives::accuracy::CapacityProxy::new(&*s);
            let paper = presets::preset("spnasnet")?.arch().network(None);
            t += &format!(
                "| paper's spnasnet: {} / MACs | {:.5} / {:.1}M |\n",
                o.accuracy_kind,
                proxy.score(&paper),
                paper.macs() as f64 / 1e6
            );
            t += &format!("| Pareto front | {} architectures (plots in search/) |\n", o.front.len());
        }
        None => anyhow::bail!("no evaluated architecture met the {TARGET_MS} ms target"),
    }
    Ok(t)
}
