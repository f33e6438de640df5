//! Properties every space must have: operators only produce valid members, JSON
//! round-trips exactly, canonical forms identify equal networks.

use rand::rngs::StdRng;
use rand::SeedableRng;
use spaces::{all_spaces, space, ArchError, SearchSpace};

const TRIALS: usize = 300;

fn each_space(f: impl Fn(&dyn SearchSpace, &mut StdRng)) {
    for s in all_spaces() {
        let mut rng = StdRng::seed_from_u64(7);
        f(s.as_ref(), &mut rng);
    }
}

#[test]
fn sampled_mutated_and_crossed_members_are_valid() {
    each_space(|s, rng| {
        let mut pop: Vec<_> = (0..20).map(|_| s.sample(rng)).collect();
        for i in 0..TRIALS {
            let a = &pop[i % pop.len()];
            let b = &pop[(i * 7 + 3) % pop.len()];
            let m = s.mutate(a, 0.3, rng);
            let c = s.crossover(a, b, rng);
            for g in [&m, &c] {
                s.check(g).unwrap_or_else(|e| panic!("{}: invalid offspring {g:?}: {e}", s.name()));
                // Building the network must succeed and keep shapes consistent.
                let net = s.network(g);
                for w in net.layers.windows(2) {
                    assert_eq!(w[0].output, w[1].input, "{}: shapes do not chain", s.name());
                }
            }
            pop.push(m);
            pop.push(c);
        }
    });
}

#[test]
fn json_round_trips_exactly() {
    each_space(|s, rng| {
        for _ in 0..TRIALS {
            let g = s.sample(rng);
            let v = s.to_json(&g);
            let back = s.from_json(&v).unwrap_or_else(|e| panic!("{}: {v} does not parse back: {e}", s.name()));
            assert_eq!(back, g, "{}: {v}", s.name());
            // Text form too, and the same JSON again.
            let text = serde_json::to_string(&v).unwrap();
            assert_eq!(s.to_json(&s.parse(&text).unwrap()), v);
        }
    });
}

#[test]
fn ofa_encodings_differing_only_in_inactive_slots_are_equal() {
    let s = space("ofa-mbv3-w1.0").unwrap();
    let base = r#"{"ks": [3,5,7,7, 3,5,0,0, 7,7,7,0, 5,5,5,5, 3,3,0,0], "e": [3,4,6,6, 6,4,0,0, 3,3,3,0, 4,4,4,4, 6,6,0,0], "d": [4,2,3,4,2], "r": [192]}"#;
    // Same network with OFA's habit of leaving real values in inactive slots.
    let noisy = r#"{"ks": [3,5,7,7, 3,5,7,3, 7,7,7,5, 5,5,5,5, 3,3,7,7], "e": [3,4,6,6, 6,4,6,3, 3,3,3,6, 4,4,4,4, 6,6,4,3], "d": [4,2,3,4,2], "r": [192], "wid": null}"#;
    let (a, b) = (s.parse(base).unwrap(), s.parse(noisy).unwrap());
    assert_eq!(a, b);
    assert_eq!(s.network(&a), s.network(&b));
    assert_eq!(s.to_json(&b)["ks"][6], 0, "inactive slots are written as 0");
}

#[test]
fn mutation_and_crossover_never_leave_inactive_garbage() {
    for name in ["ofa-mbv3-w1.0", "ofa-proxyless-w1.3"] {
        let s = space(name).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..TRIALS {
            let a = s.sample(&mut rng);
            let b = s.sample(&mut rng);
            let c = s.crossover(&a, &b, &mut rng);
            let mut canon = c.clone();
            s.canonicalize(&mut canon);
            assert_eq!(c, canon);
        }
    }
}

/// OFA's `mutate_arch`: a slot's kernel and expansion are resampled on one draw. With
/// independent draws at 0.1 both would change in 0.1² · (2/3)² ≈ 0.4 % of slots; together,
/// in 0.1 · (2/3)² ≈ 4.4 %.
#[test]
fn ofa_mutation_resamples_kernel_and_expansion_together() {
    let s = space("ofa-mbv3-w1.2").unwrap();
    let slots = 20;
    let mut rng = StdRng::seed_from_u64(3);
    let (mut both, mut seen) = (0usize, 0usize);
    for _ in 0..2000 {
        let a = s.sample(&mut rng);
        let m = s.mutate(&a, 0.1, &mut rng);
        let (used_a, used_m) = (s.active_genes(&a), s.active_genes(&m));
        for i in (0..slots).filter(|&i| used_a[i] && used_m[i]) {
            seen += 1;
            both += usize::from(a.0[i] != m.0[i] && a.0[slots + i] != m.0[slots + i]);
        }
    }
    let share = both as f64 / seen as f64;
    assert!((0.03..0.06).contains(&share), "kernel and expansion both changed in {share:.4} of slots");
}

/// A slot a parent does not use holds a placeholder (canonical 0 = k3/e3), not a choice: where
/// a child starts using it, it is drawn uniformly (mutation) or taken from the parent that uses
/// it (crossover), as OFA's latent slot values are, instead of always starting as k3/e3.
#[test]
fn ofa_slots_that_become_active_do_not_inherit_placeholders() {
    let s = space("ofa-mbv3-w1.2").unwrap();
    let slots = 20;
    let mut rng = StdRng::seed_from_u64(4);
    let shallow = |g: &mut spaces::Genome| g.0[2 * slots..2 * slots + 5].iter_mut().for_each(|d| *d = 0);
    let (mut placeholders, mut woken) = (0usize, 0usize);
    for _ in 0..3000 {
        let mut a = s.sample(&mut rng);
        shallow(&mut a);
        s.canonicalize(&mut a);
        let m = s.mutate(&a, 0.1, &mut rng);
        let (used_a, used_m) = (s.active_genes(&a), s.active_genes(&m));
        for i in (0..slots).filter(|&i| !used_a[i] && used_m[i]) {
            woken += 1;
            placeholders += usize::from(m.0[i] == 0 && m.0[slots + i] == 0);
        }
        let b = s.sample(&mut rng);
        let c = s.crossover(&a, &b, &mut rng);
        let used_b = s.active_genes(&b);
        let used_c = s.active_genes(&c);
        for i in (0..2 * slots).filter(|&i| !used_a[i] && used_b[i] && used_c[i]) {
            assert_eq!(c.0[i], b.0[i], "gene {i} of a crossover came from the parent that does not use it");
        }
    }
    assert!(woken > 100, "only {woken} slots woke up");
    let share = placeholders as f64 / woken as f64;
    assert!(share < 0.25, "{share:.3} of the slots that became active are k3/e3 (uniform: 1/9)");
}

fn parse_err(space_name: &str, text: &str) -> String {
    match space(space_name).unwrap().parse(text) {
        Ok(g) => panic!("{text} parsed as {g:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn invalid_architectures_name_the_field() {
    let e = parse_err("ofa-mbv3-w1.0", r#"{"ks": [3], "e": [3], "d": [2,2,2,2,2]}"#);
    assert!(e.contains("`ks`") && e.contains("expected 20 entries, got 1"), "{e}");
    let ks = "[3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3]";
    let e =
        parse_err("ofa-mbv3-w1.0", &format!(r#"{{"ks": {}, "e": {ks}, "d": [2,2,2,2,2]}}"#, ks.replacen('3', "4", 1)));
    assert!(e.contains("`ks[0]`") && e.contains("4 is not one of 3, 5, 7"), "{e}");
    let e = parse_err("ofa-mbv3-w1.0", &format!(r#"{{"ks": {ks}, "e": {ks}, "d": [2,2,2,2,5]}}"#));
    assert!(e.contains("`d[4]`"), "{e}");
    let e = parse_err("ofa-mbv3-w1.0", &format!(r#"{{"ks": {ks}, "e": {ks}, "d": [2,2,2,2,2], "r": [225]}}"#));
    assert!(e.contains("`r`") && e.contains("225"), "{e}");
    let e = parse_err("ofa-mbv3-w1.0", &format!(r#"{{"ks": {ks}, "e": {ks}, "d": [2,2,2,2,2], "depth": 1}}"#));
    assert!(e.contains("`depth`") && e.contains("unknown field"), "{e}");
    let e = parse_err(
        "singlepath",
        r#"{"ops": ["skip","k3_e3","k3_e3","k3_e3","k3_e3","k3_e3","k3_e3","k3_e3","k3_e3","k3_e3","k3_e3","k3_e3","k3_e3","k3_e3","k3_e3","k3_e3","k3_e3","k3_e3","k3_e3","k3_e3"]}"#,
    );
    assert!(e.contains("`ops[0]`") && e.contains("first layer of a stage"), "{e}");
    let e = parse_err("fbnet-cifar100", r#"{"ops": "k3_e1-k3_e9"}"#);
    assert!(e.contains("`ops`") && e.contains("expected 22"), "{e}");
    let e = parse_err("mnasnet", r#"{"blocks": [{"op": "mbconv6"}]}"#);
    assert!(e.contains("`blocks`") && e.contains("expected 7"), "{e}");
    let e = parse_err("fbnet", "{not json");
    assert!(e.starts_with("not valid JSON"), "{e}");
    let e =
        spaces::Arch::parse("blocks", r#"{"blocks": ["r1_k3_s11_e1_i32_o16", "r1_k3_s22_e6_i24_o24"]}"#).err().unwrap();
    assert!(matches!(&e, ArchError::Field { field, .. } if field == "blocks[1]"), "{e}");
}

#[test]
fn layer_tables_cover_every_layer_of_sampled_members() {
    each_space(|s, rng| {
        let res = s.resolutions();
        let table: std::collections::HashSet<String> = s.layer_table(&res).iter().map(|l| l.key()).collect();
        for _ in 0..50 {
            let g = s.sample(rng);
            for l in s.network(&g).layers.iter().filter(|l| l.is_timed()) {
                assert!(table.contains(&l.key()), "{}: {} missing from the layer table", s.name(), l.key());
            }
        }
    });
}

#[test]
fn layer_table_sizes() {
    // OFA's published Note10 table has 96 keys per resolution: the fixed layers (stem,
    // first block, final expand, pool, feature mix, classifier) + 10 block positions x 9
    // (k, e) — positions 1-3 of a stage share their shapes, hence their keys.
    let s = space("ofa-mbv3-w1.0").unwrap();
    assert_eq!(s.layer_table(&[224]).len(), 96);
    // Feature mix and classifier run on the pooled vector: shared across resolutions.
    assert_eq!(s.layer_table(&[224, 192]).len(), 2 * 96 - 2);
    // HW-NAS-Bench: 112 keys = 12 layer groups x 9 ops + 4 fixed entries (stem, header, pool, FC).
    assert_eq!(space("fbnet-cifar100").unwrap().layer_table(&[32]).len(), 112);
}

#[test]
fn space_sizes_match_the_papers() {
    let ofa = space("ofa-mbv3-w1.0").unwrap().size();
    assert!((ofa / 25.0 / 2.18e19 - 1.0).abs() < 0.01, "{ofa}");
    let sp = space("singlepath").unwrap().size();
    assert_eq!(sp, 4f64.powi(5) * 5f64.powi(15));
    let fb = space("fbnet-cifar100").unwrap().size();
    assert!((fb / 9f64.powi(22) - 1.0).abs() < 1e-12, "{fb}");
}

#[test]
fn extremes_bracket_samples_by_macs() {
    each_space(|s, rng| {
        let (small, large) = s.extremes();
        s.check(&small).unwrap();
        s.check(&large).unwrap();
        let (lo, hi) = (s.network(&small).macs(), s.network(&large).macs());
        for _ in 0..100 {
            let m = s.network(&s.sample(rng)).macs();
            assert!(lo <= m && m <= hi, "{}: {lo} <= {m} <= {hi}", s.name());
        }
    });
}
