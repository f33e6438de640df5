//! Searches on OFA's published Note10 tables: members are priced from their genes (no network
//! built) with exactly the predictor's bits, and a job proposes only the resolutions the
//! tables cover (or refuses a pinned resolution they do not cover, naming those they do).

use crate::search_common::*;

use predictors::LatencyPredictor;
use rand::SeedableRng;
use search::config::StrategyConfig;
use search::objectives::LatencyObjective;
use std::sync::Arc;

const NOTE10: [u32; 5] = [160, 176, 192, 208, 224];

fn note10() -> Arc<dyn LatencyPredictor> {
    Arc::new(predictors::ofa_yaml::import(&shared_data().join("ofa/note10"), "ofa-mbv3-w1.2", None).unwrap())
}

/// The per-gene table's latency is the predictor's `predict_ms` of the member's network, bit for bit.
fn bit_identical(space: &dyn spaces::SearchSpace, p: Arc<dyn LatencyPredictor>) {
    let obj = LatencyObjective::new("dev", p.clone(), space);
    assert!(obj.is_gene_tabulated() && !obj.needs_network(), "{}", space.description());
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let (lo, hi) = space.extremes();
    for g in [lo, hi].into_iter().chain((0..500).map(|_| space.sample(&mut rng))) {
        let want = p.predict_ms(&space.network(&g)).unwrap();
        let got = obj.genome_ms(space, &g).unwrap();
        assert_eq!(got.to_bits(), want.to_bits(), "{}: {got} vs {want}", space.to_json(&g));
    }
}

#[test]
fn per_gene_tables_answer_predict_ms_bit_for_bit() {
    let w12 = search::pinned::restrict_resolutions(spaces::space("ofa-mbv3-w1.2").unwrap(), &NOTE10, "t").unwrap();
    bit_identical(&*w12, note10());
    // A resolution-independent additive model over all 25 resolutions, with an offset.
    bit_identical(&*spaces::space("ofa-mbv3-w1.0").unwrap(), Arc::new(MacsLinear { additive: true }));
    bit_identical(&*spaces::space("ofa-proxyless-w1.3").unwrap(), Arc::new(MacsLinear { additive: true }));
    // Not additive: no table, every member's network is priced.
    let obj = LatencyObjective::new(
        "dev",
        Arc::new(MacsLinear { additive: false }),
        &*spaces::space("ofa-mbv3-w1.0").unwrap(),
    );
    assert!(!obj.is_gene_tabulated() && obj.needs_network());
}

/// A latency MLP fitted to `n` members of `space` (latency linear in MACs, with a bend the
/// hidden path can pick up).
fn mlp_on(space: &dyn spaces::SearchSpace, n: usize) -> Arc<dyn LatencyPredictor> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let nets: Vec<spaces::ir::Network> = (0..n).map(|_| space.network(&space.sample(&mut rng))).collect();
    let y: Vec<f64> = nets.iter().map(|n| (n.macs() as f64 / 1e7).powf(1.2)).collect();
    let cfg = predictors::mlp::MlpConfig { epochs: 100, ..Default::default() };
    let refs: Vec<&spaces::ir::Network> = nets.iter().collect();
    Arc::new(predictors::latency_mlp::MlpPredictor::fit("test", &refs, &y, &cfg).unwrap())
}

/// FBNet is layer-wise too, and the latency MLP compiles per gene choice (its first layer is
/// a per-layer sum): both price members from their genes with `predict_ms`'s bits.
#[test]
fn fbnet_tables_and_the_mlp_compile_per_gene_bit_for_bit() {
    for name in ["fbnet-cifar100", "fbnet"] {
        let s = spaces::space(name).unwrap();
        bit_identical(&*s, Arc::new(MacsLinear { additive: true }));
        bit_identical(&*s, mlp_on(&*s, 40));
    }
    bit_identical(&*spaces::space("fbnet-cifar100").unwrap(), pixel3_lut());
    let w10 = spaces::space("ofa-mbv3-w1.0").unwrap();
    bit_identical(&*w10, mlp_on(&*w10, 40));
}

#[test]
fn a_job_on_the_note10_tables_proposes_only_covered_resolutions() {
    let dir = scratch("note10-job");
    let strategy = StrategyConfig::by_name("evolution").unwrap();
    let mut job = open(config("ofa-mbv3-w1.2", strategy.clone(), 30, 3, 0, 25.0), note10(), &dir, false).unwrap();
    job.run(None, &mut |_| {}).unwrap();
    let rs: std::collections::BTreeSet<u32> =
        job.history().iter().map(|r| job.space().resolution(&r.eval.genome)).collect();
    assert!(rs.len() > 1 && rs.iter().all(|r| NOTE10.contains(r)), "proposed resolutions {rs:?}");
    // The written best architecture is a member at a covered resolution, within the target.
    let best: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("best.json")).unwrap()).unwrap();
    let arch = spaces::Arch::parse("ofa-mbv3-w1.2", &best["best"]["arch"].to_string()).unwrap();
    assert!(NOTE10.contains(&arch.resolution()), "{best}");
    assert!(note10().predict_ms(&arch.network(None)).unwrap() <= 25.0);
    let _ = std::fs::remove_dir_all(&dir);
    // A pinned resolution the tables do not cover is refused, naming the covered ones.
    let mut c = config("ofa-mbv3-w1.2", strategy.clone(), 10, 1, 0, 25.0);
    c.sampling_mut().fixed.insert("r".into(), "128".into());
    let e = crate::search_common::chain(&open(c, note10(), &scratch("note10-128"), false).err().unwrap());
    assert!(e.contains("128") && e.contains("160, 176, 192, 208, 224"), "{e}");
    // A covered one runs at that resolution only.
    let dir = scratch("note10-176");
    let mut c = config("ofa-mbv3-w1.2", strategy, 10, 1, 0, 25.0);
    c.sampling_mut().fixed.insert("r".into(), "176".into());
    let mut job = open(c, note10(), &dir, false).unwrap();
    job.run(None, &mut |_| {}).unwrap();
    assert!(job.history().iter().all(|r| job.space().resolution(&r.eval.genome) == 176));
    let _ = std::fs::remove_dir_all(&dir);
}
