//! Fitting any family from a dataset's training rows: the one entry point the CLI,
//! the comparison and the benchmark share.

use crate::dataset::{Dataset, LayerRow, LayerSource, NetworkRow};
use crate::flops::{FlopsPredictor, Variant};
use crate::kernel::{self, KernelPredictor};
use crate::latency_mlp::MlpPredictor;
use crate::lut::{self, FitOptions, LutPredictor};
use crate::mlp::MlpConfig;
use crate::{FitError, LatencyPredictor};

/// Every fittable family's name, in the order a comparison lists them.
pub const FAMILIES: [&str; 6] = ["auto", "lut", "kernel", "mlp", "flops", "flops+memory"];

/// A family `fit` can fit (the names of [`FAMILIES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FitFamily {
    Auto,
    Lut,
    Kernel,
    Mlp,
    Flops,
    FlopsMemory,
}

impl FitFamily {
    pub const ALL: [FitFamily; 6] =
        [FitFamily::Auto, FitFamily::Lut, FitFamily::Kernel, FitFamily::Mlp, FitFamily::Flops, FitFamily::FlopsMemory];

    pub fn name(self) -> &'static str {
        FAMILIES[FitFamily::ALL.iter().position(|&f| f == self).expect("every family is in ALL")]
    }
}

impl std::str::FromStr for FitFamily {
    type Err = FitError;
    fn from_str(s: &str) -> Result<FitFamily, FitError> {
        match FAMILIES.iter().position(|&n| n == s) {
            Some(i) => Ok(FitFamily::ALL[i]),
            None => Err(FitError::UnknownFamily(s.into())),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    pub lut: FitOptions,
    /// Missing-key policy of lookup tables (`cost-model`, `macs-linear`, `error`); `None`:
    /// tables fitted to networks price unseen layers by their cost model, tables of
    /// single-layer measurements refuse them.
    pub fallback: Option<String>,
    pub seed: u64,
}

/// A lookup table: from the dataset's single-layer rows when it has them (calibrated on
/// the training networks if there are any); else from its layers timed inside the training
/// networks (OFA's way: each key's mean over the networks it occurs in, not calibrated: the
/// rows already are shares of those networks' times); otherwise NNLS-fitted to the training
/// networks.
pub fn fit_lut(ds: &Dataset, train: &[&NetworkRow], opts: &TrainOptions) -> Result<LutPredictor, FitError> {
    let nets: Vec<_> = train.iter().map(|r| &r.network).collect();
    let y: Vec<f64> = train.iter().map(|r| r.value).collect();
    let alone: Vec<&LayerRow> = ds.layers.iter().filter(|l| l.source == LayerSource::Alone).collect();
    let mut p = if ds.layers.is_empty() {
        lut::fit_networks(ds.source.clone(), &nets, &y, ds.coverage(), opts.lut)?
    } else if !alone.is_empty() {
        let mut p = table_of(ds, &alone)?;
        if !nets.is_empty() {
            lut::calibrate(&mut p, &nets, &y)?;
        }
        p
    } else {
        let train_ids: std::collections::BTreeSet<&str> = train.iter().map(|r| r.arch_id.as_str()).collect();
        let inside: Vec<&LayerRow> = ds
            .layers
            .iter()
            .filter(|l| matches!(&l.source, LayerSource::InNetwork { arch_id } if train_ids.contains(arch_id.as_str())))
            .collect();
        if inside.is_empty() {
            return Err(FitError::NoLayersInNetworks { dataset: ds.source.clone(), networks: train.len() });
        }
        table_of(ds, &inside)?
    };
    if let Some(policy) = &opts.fallback {
        p.set_fallback(policy)?;
    }
    Ok(p)
}

/// A table of each key's mean over `rows` (repeated measurements of one key are averaged).
fn table_of(ds: &Dataset, rows: &[&LayerRow]) -> Result<LutPredictor, FitError> {
    let mut seen = std::collections::BTreeMap::new();
    for l in rows {
        let e = seen.entry(l.key.clone()).or_insert((0.0, 0usize));
        e.0 += l.latency_ms;
        e.1 += 1;
    }
    let entries = seen
        .into_iter()
        .map(|(key, (sum, n))| lut::Entry { key, ms: sum / n as f64, macs: None, memory_bytes: None })
        .collect();
    let mut p = LutPredictor::from_entries(ds.source.clone(), entries, ds.coverage())?;
    // Attach MACs/memory to entries whose layer the covered spaces know (for the fallback).
    p.annotate_from_coverage()?;
    Ok(p)
}

/// Fits `family` on the training rows. The predictor records the dataset's precision; a
/// dataset mixing precisions is refused ([`Dataset::precision`]).
pub fn fit(
    family: &str,
    ds: &Dataset,
    train: &[&NetworkRow],
    opts: &TrainOptions,
) -> Result<Box<dyn LatencyPredictor>, FitError> {
    let precision = ds.precision()?;
    Ok(crate::precision::with_precision(fit_family(family, ds, train, opts)?, precision))
}

fn fit_family(
    family: &str,
    ds: &Dataset,
    train: &[&NetworkRow],
    opts: &TrainOptions,
) -> Result<Box<dyn LatencyPredictor>, FitError> {
    let nets: Vec<_> = train.iter().map(|r| &r.network).collect();
    let y: Vec<f64> = train.iter().map(|r| r.value).collect();
    Ok(match family.parse::<FitFamily>()? {
        FitFamily::Auto => fit_selected_any(ds, train, None, opts)?.0,
        FitFamily::Lut => Box::new(fit_lut(ds, train, opts)?),
        FitFamily::Kernel if ds.layers.is_empty() => {
            // No per-layer targets: the per-kind cost model, fitted to the networks.
            let s = crate::network_fit::Shrinkage {
                kind_ridge: opts.lut.kind_ridge,
                ..crate::network_fit::Shrinkage::BASELINE
            };
            let (_, fit) = crate::network_fit::fit_all(&nets, &y, None, s)?;
            Box::new(KernelPredictor::from_network_fit(ds.source.clone(), &fit, nets.len()).serving(ds.spaces()))
        }
        FitFamily::Kernel => {
            let lut = fit_lut(ds, train, opts)?;
            let mut layers: Vec<&spaces::ir::Layer> = train.iter().flat_map(|r| r.network.layers.iter()).collect();
            let covered = coverage_layers(ds)?;
            layers.extend(covered.iter());
            Box::new(KernelPredictor::fit(&lut, &layers, kernel::default_params(opts.seed))?.serving(ds.spaces()))
        }
        FitFamily::Mlp => {
            let cfg = MlpConfig { seed: opts.seed, ..Default::default() };
            Box::new(MlpPredictor::fit(&ds.source, &nets, &y, &cfg)?.serving(ds.spaces()))
        }
        f @ (FitFamily::Flops | FitFamily::FlopsMemory) => {
            let variant = if f == FitFamily::Flops { Variant::Macs } else { Variant::MacsMemory };
            Box::new(FlopsPredictor { spaces: ds.spaces(), ..FlopsPredictor::fit(variant, &nets, &y)? })
        }
    })
}

/// `auto`: repeated k-fold CV on the training rows chooses among the MACs/bytes baseline,
/// per-kind cost models and lookup tables shrunk toward them (see [`crate::auto`]); the
/// chosen one is refitted on all training rows. Returns the selection with its scores.
pub fn fit_auto(
    ds: &Dataset,
    train: &[&NetworkRow],
    opts: &TrainOptions,
) -> Result<(Box<dyn LatencyPredictor>, crate::auto::Selection), FitError> {
    fit_selected(ds, train, None, opts)
}

/// `fit --from SOURCE`: a predictor for a new device from a few of its networks and one
/// fitted for another device. `auto`'s selection over candidates that all start from the
/// source's per-layer costs: the source calibrated by scale and offset, plus (as the data
/// support them) MACs/bytes rates, per-kind cost models and per-key residuals. Saved as a
/// lookup table over every layer the dataset's spaces can contain at its resolutions, so
/// it needs no source file at prediction time.
pub fn fit_transfer(
    ds: &Dataset,
    train: &[&NetworkRow],
    from: &dyn LatencyPredictor,
    opts: &TrainOptions,
) -> Result<(Box<dyn LatencyPredictor>, crate::auto::Selection), FitError> {
    let Some(source) = from.per_layer() else {
        return Err(FitError::NotPerLayer(from.family().to_string()));
    };
    fit_selected(ds, train, Some(source), opts)
}

fn fit_selected(
    ds: &Dataset,
    train: &[&NetworkRow],
    source: Option<&dyn crate::additive::PerLayer>,
    opts: &TrainOptions,
) -> Result<(Box<dyn LatencyPredictor>, crate::auto::Selection), FitError> {
    let precision = ds.precision()?;
    let (p, sel) = fit_selected_any(ds, train, source, opts)?;
    Ok((crate::precision::with_precision(p, precision), sel))
}

fn fit_selected_any(
    ds: &Dataset,
    train: &[&NetworkRow],
    source: Option<&dyn crate::additive::PerLayer>,
    opts: &TrainOptions,
) -> Result<(Box<dyn LatencyPredictor>, crate::auto::Selection), FitError> {
    let sel = crate::auto::select(train, source, opts.seed)?;
    let crate::auto::Candidate::Additive(s) = sel.chosen;
    let nets: Vec<_> = train.iter().map(|r| &r.network).collect();
    let y: Vec<f64> = train.iter().map(|r| r.value).collect();
    let (design, fit) = crate::network_fit::fit_all(&nets, &y, source, s)?;
    let describe = |what: &str| format!("{} ({what}: {})", ds.source, sel.chosen.describe());
    let p: Box<dyn LatencyPredictor> = if s.source != crate::network_fit::SourceTerm::Off {
        // Every layer the target can contain gets its entry: the source knows them all.
        let mut layers = coverage_layers(ds)?;
        layers.extend(design.layers().iter().cloned());
        Box::new(lut::from_fit(describe("transfer"), &fit, &layers, source, ds.coverage(), &nets, &y)?)
    } else if s.kind_ridge.is_none() && s.key_ridge.is_none() {
        Box::new(FlopsPredictor {
            variant: Variant::MacsMemory,
            intercept_ms: fit.offset_ms,
            ms_per_mmac: fit.cost.ms_per_mmac,
            ms_per_mb: fit.cost.ms_per_mb,
            spaces: ds.spaces(),
        })
    } else {
        Box::new(lut::from_fit(describe("auto"), &fit, design.layers(), None, ds.coverage(), &nets, &y)?)
    };
    Ok((p, sel))
}

/// Every layer the dataset's spaces can contain at its resolutions.
fn coverage_layers(ds: &Dataset) -> Result<Vec<spaces::ir::Layer>, FitError> {
    let mut out = Vec::new();
    for c in ds.coverage() {
        out.extend(spaces::space(&c.space)?.layer_table(&c.resolutions));
    }
    Ok(out)
}

#[cfg(test)]
mod family_tests {
    use super::*;

    #[test]
    fn family_names_round_trip() {
        for f in FitFamily::ALL {
            assert_eq!(f.name().parse::<FitFamily>().unwrap(), f);
        }
        assert!("forest".parse::<FitFamily>().unwrap_err().to_string().contains("unknown predictor family `forest`"));
    }
}

#[cfg(test)]
mod in_network_tests {
    use super::*;
    use crate::dataset::{load, LayerSource};
    use rand::SeedableRng;

    /// Two fbnet-cifar100 networks (1.0 and 2.0 ms) with per-layer rows in proportion to each
    /// layer's MACs (identity layers 0 ms), as `hwnas profile --networks 2 --per-layer` writes them.
    fn csv() -> (std::path::PathBuf, Vec<spaces::ir::Network>) {
        let space = spaces::space("fbnet-cifar100").unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut text = String::from("kind,key,space,arch,resolution,latency_ms\n");
        let mut nets = Vec::new();
        for total in [1.0, 2.0] {
            let mut g = space.sample(&mut rng);
            space.canonicalize(&mut g);
            let arch = space.to_json(&g).to_string().replace('"', "\"\"");
            let net = space.network_at(&g, 32);
            text += &format!("network,,fbnet-cifar100,\"{arch}\",32,{total}\n");
            let macs: f64 = net.layers.iter().filter(|l| l.is_timed()).map(|l| l.macs() as f64).sum();
            for l in net.layers.iter().filter(|l| l.is_timed()) {
                let ms = total * l.macs() as f64 / macs;
                text += &format!("layer-in-network,{},fbnet-cifar100,\"{arch}\",32,{ms}\n", l.key());
            }
            nets.push(net);
        }
        let path = std::env::temp_dir().join(format!("hwnas-in-network-{}.csv", std::process::id()));
        std::fs::write(&path, text).unwrap();
        (path, nets)
    }

    #[test]
    fn a_table_of_layers_inside_networks_uses_the_training_networks_only() {
        let (path, nets) = csv();
        let ds = load(&path, None, "latency_ms").unwrap();
        assert_eq!(ds.networks.len(), 2);
        assert!(ds.has_layers_in_networks());
        assert!(ds.layers.iter().all(|l| matches!(l.source, LayerSource::InNetwork { .. })));
        assert!(ds.layers.iter().any(|l| l.latency_ms == 0.0), "identity layers take no time inside a network");
        let opts = TrainOptions { fallback: Some("cost-model".into()), ..Default::default() };
        // Trained on the first network: its own rows sum back to its latency; the second
        // network's rows are not in the table.
        let first = fit_lut(&ds, &[&ds.networks[0]], &opts).unwrap();
        assert!((first.predict_ms(&nets[0]).unwrap() - 1.0).abs() < 1e-9);
        let keys0: std::collections::BTreeSet<String> = nets[0].layers.iter().map(|l| l.key()).collect();
        assert!(first.entries().iter().all(|e| keys0.contains(&e.key)));
        // On both: a key the two share is their mean.
        let both = fit_lut(&ds, &[&ds.networks[0], &ds.networks[1]], &opts).unwrap();
        let shared = nets[0].layers.iter().find(|l| nets[1].layers.iter().any(|m| m.key() == l.key())).unwrap();
        let rows: Vec<f64> = ds.layers.iter().filter(|r| r.key == shared.key()).map(|r| r.latency_ms).collect();
        let entry = both.entries().iter().find(|e| e.key == shared.key()).unwrap().ms;
        assert!((entry - rows.iter().sum::<f64>() / rows.len() as f64).abs() < 1e-12);
        // A table needs rows of its training networks.
        let none = Dataset { networks: vec![], ..ds.with_layers(|_| true) };
        let other = crate::dataset::NetworkRow { arch_id: "fbnet-cifar100:{}".into(), ..ds.networks[0].clone() };
        let e = fit_lut(&none, &[&other], &opts).err().unwrap().to_string();
        assert!(e.contains("none of the 1 training networks has layer-in-network rows"), "{e}");
        // Negative times are still refused.
        let bad = std::fs::read_to_string(&path).unwrap().replacen(",0\n", ",-1\n", 1);
        std::fs::write(&path, bad).unwrap();
        assert!(load(&path, None, "latency_ms").is_err());
    }
}
