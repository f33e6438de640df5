//! `hwnas fit --import …`: published tables as predictor files.

use anyhow::{bail, Context, Result};
use predictors::spnas::SinglePathPredictor;
use predictors::LatencyPredictor;
use spaces::{presets, Genome};
use std::path::Path;

pub fn run(kind: &str, data: &Path, space: Option<&str>, resolution: Option<u32>, out: Option<&Path>) -> Result<()> {
    let p: Box<dyn LatencyPredictor> = match kind {
        "spnas-pixel1" => {
            let p = SinglePathPredictor::import(data)?;
            let s = spaces::space("singlepath")?;
            let spnas = presets::preset("spnasnet")?.arch().network(None);
            println!("spnasnet: {:.3} ms", p.predict_ms(&spnas)?);
            println!("all k5e6: {:.3} ms", p.predict_ms(&s.network(&Genome(vec![3; 20])))?);
            println!("all k3e3: {:.3} ms", p.predict_ms(&s.network(&Genome(vec![0; 20])))?);
            println!("smallest: {:.3} ms", p.predict_ms(&s.network(&s.extremes().0))?);
            Box::new(p)
        }
        "ofa-yaml" => {
            let space = space.context(
                "--space is required with --import ofa-yaml (ofa-mbv3-w1.0, ofa-mbv3-w1.2, ofa-proxyless-w1.3)",
            )?;
            let p = predictors::ofa_yaml::import(data, space, resolution)?;
            let s = spaces::space(space)?;
            let (small, large) = s.extremes();
            println!("{} lookup-table entries", p.entries().len());
            for (name, g) in [("smallest", small), ("largest", large)] {
                let net = s.network(&g);
                println!("{name} subnet at {}: {:.3} ms", net.resolution(), p.predict_ms(&net)?);
            }
            Box::new(p)
        }
        other => bail!("unknown import `{other}` (spnas-pixel1, ofa-yaml)"),
    };
    let out = out.context("--out FILE is required with --import")?;
    p.save(out)?;
    eprintln!("saved {}", out.display());
    Ok(())
}
