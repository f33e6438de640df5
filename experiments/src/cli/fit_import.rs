//! `hwnas fit --import …`: published tables as predictor files.

use anyhow::{bail, Context, Result};
use predictors::spnas::SinglePathPredictor;
use predictors::LatencyPredictor;
use spaces::{presets, Genome};
use std::path::Path;

pub fn run(kind: &str, data: &Path, space: Option<&str>, resolution: Option<u32>, out: Option<&Path>) -> Result<()> {
    if kind == "ofa-accuracy" {
        return import_ofa_accuracy(data, space, out);
    }
    let p: Box<dyn LatencyPredictor> = match kind {
        "spnas-pixel1" => {
            let p = SinglePathPredictor::import(data)?;
            let s = spaces::space("singlepath")?;
            let spnas = presets::preset("spnasnet")?.arch().network(None);
            outln!("spnasnet: {:.3} ms", p.predict_ms(&spnas)?);
            outln!("all k5e6: {:.3} ms", p.predict_ms(&s.network(&Genome(vec![3; 20])))?);
            outln!("all k3e3: {:.3} ms", p.predict_ms(&s.network(&Genome(vec![0; 20])))?);
            outln!("smallest: {:.3} ms", p.predict_ms(&s.network(&s.extremes().0))?);
            Box::new(p)
        }
        "ofa-yaml" => {
            let space = space.context(
                "--space is required with --import ofa-yaml (ofa-mbv3-w1.0, ofa-mbv3-w1.2, ofa-proxyless-w1.3)",
            )?;
            let p = predictors::ofa_yaml::import(data, space, resolution)?;
            let s = spaces::space(space)?;
            let (small, large) = s.extremes();
            outln!(
                "{} lookup-table entries at resolutions {} (searches on this table use only these)",
                p.entry_count(),
                p.resolutions().iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            );
            for r in p.resolutions() {
                let [lo, hi] = [&small, &large].map(|g| p.predict_ms(&s.network_at(g, r)));
                outln!("at {r}: smallest subnet {:.3} ms, largest {:.3} ms", lo?, hi?);
            }
            Box::new(p)
        }
        other => bail!("unknown import `{other}` (spnas-pixel1, ofa-yaml, ofa-accuracy)"),
    };
    let out = out.context("--out FILE is required with --import")?;
    p.save(out)?;
    eprintln!("saved {}", out.display());
    Ok(())
}

/// OFA's accuracy predictor (`acc_predictor.pth`) as an `ofa-accuracy` file, for `space`
/// (default the w1.2 space it was trained on). Prints its predictions for OFA's published
/// `note10_lat@30ms` and the largest sub-network, which OFA's code gives as 0.819671 and 0.835928.
fn import_ofa_accuracy(data: &Path, space: Option<&str>, out: Option<&Path>) -> Result<()> {
    use predictors::accuracy::AccuracyPredictor;
    use predictors::ofa_accuracy::{OfaAccuracyPredictor, TRAINED_ON};
    let out = out.context("--out FILE is required with --import")?;
    let space = space.unwrap_or(TRAINED_ON);
    let p = OfaAccuracyPredictor::import(data, space)?;
    if space != TRAINED_ON {
        eprintln!("note: OFA trained this predictor on {TRAINED_ON}; on {space} its numbers are w1.2 accuracies");
    }
    let note10 = p.predict_spec(
        &[3, 3, 3, 3, 5, 3, 3, 3, 5, 5, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3],
        &[3, 3, 3, 3, 4, 3, 4, 3, 4, 4, 3, 3, 6, 4, 4, 3, 6, 6, 4, 3],
        &[2, 3, 3, 3, 4],
        224,
    )?;
    let largest = p.predict_spec(&[7; 20], &[6; 20], &[4; 5], 224)?;
    outln!("note10_lat@30ms at 224: {note10:.6} (OFA: 0.819671); largest subnet at 224: {largest:.6} (OFA: 0.835928)");
    p.save(out)?;
    eprintln!("saved {}", out.display());
    Ok(())
}
