//! `hwnas experiments` end to end through the binary, on the real Single-Path NAS Pixel 1 table.

use std::path::PathBuf;
use std::process::{Command, Output};

fn hwnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hwnas")).args(args).output().expect("hwnas runs")
}

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

#[test]
fn list_names_every_experiment() {
    let out = hwnas(&["experiments", "list"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(
        names,
        ["spnas-latency", "fbnet-fronts", "predictor-study", "ofa-specialization", "ofa-tutorial", "precision-study"]
    );
}

#[test]
fn unknown_experiment_and_missing_data_are_clear_errors() {
    let out = hwnas(&["experiments", "run", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown experiment `nope` (known: spnas-latency"));
    let out = hwnas(&["experiments", "run", "spnas-latency", "--shared", "/nonexistent"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent has no data/ directory"));
}

/// A number in the row of the printed table whose first cell starts with `row`, column `col`.
fn cell(table: &str, row: &str, col: usize) -> String {
    let line = table.lines().find(|l| l.starts_with(&format!("| {row}"))).unwrap_or_else(|| panic!("no row {row}"));
    line.split('|').map(str::trim).nth(col + 1).unwrap().to_string()
}

#[test]
fn spnas_latency_reproduces_the_pixel1_numbers_and_searches_under_80_ms() {
    let dir = std::env::temp_dir().join(format!("hwnas-exp-spnas-{}", std::process::id()));
    let shared = shared();
    let args =
        ["experiments", "run", "spnas-latency", "--shared", shared.to_str().unwrap(), "--out", dir.to_str().unwrap()];
    let out = hwnas(&[&args[..], &["--population", "8", "--generations", "2"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert_eq!(cell(&table, "spnasnet", 2), "80.593");
    assert_eq!(cell(&table, "spnasnet", 3), "79");
    assert_eq!(cell(&table, "all k5_e6", 2), "131.458");
    assert_eq!(cell(&table, "all k3_e3", 2), "65.636");
    assert_eq!(cell(&table, "smallest", 2), "30.790");
    assert_eq!(cell(&table, "evaluated architectures", 1), "24");
    let best: f64 = cell(&table, "best latency", 1).trim_end_matches(" ms").parse().unwrap();
    assert!(best <= 80.0 && best > 30.79, "best latency {best}");
    assert_eq!(std::fs::read_to_string(dir.join("table.md")).unwrap(), table);
    for f in ["spnas-pixel1.json", "search/best.json", "search/pareto.png", "search/pareto.svg"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fbnet_fronts_places_the_presets_on_the_measured_tables() {
    let dir = std::env::temp_dir().join(format!("hwnas-exp-fbnet-{}", std::process::id()));
    let shared = shared();
    let args =
        ["experiments", "run", "fbnet-fronts", "--shared", shared.to_str().unwrap(), "--out", dir.to_str().unwrap()];
    let out = hwnas(&[&args[..], &["--population", "8", "--generations", "2"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| l.starts_with("| pixel3") || l.starts_with("| raspi4"))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 10, "{table}");
    // Medians of the 5,000 measured latencies; the table fitted on 200 recovers the rest exactly.
    assert!(rows.iter().all(|r| r[2] == if r[1] == "pixel3" { "17.711" } else { "33.600" } && r[3] == "0.00"));
    let preset = |dev: &str, name: &str| rows.iter().find(|r| r[1] == dev && r[4].starts_with(name)).unwrap().clone();
    assert_eq!(&preset("pixel3", "fbnet-a")[7..9], ["0.7953", "19.290"]);
    assert_eq!(&preset("raspi4", "fbnet-c")[7..9], ["0.9254", "52.702"]);
    for strategy in ["evolution", "nsga2"] {
        let r = preset("pixel3", strategy);
        assert_eq!(r[5], "24");
        assert!(r[8].parse::<f64>().unwrap() <= 17.711);
    }
    for f in ["pixel3-fronts.png", "pixel3-fronts.svg", "raspi4-fronts.png", "raspi4-nsga2/history.parquet"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The held-out Spearman table of one dataset of predictor-study: column name → values by row.
fn spearman_table<'a>(table: &'a str, label: &str) -> Vec<Vec<(&'a str, &'a str)>> {
    let start = table.find(&format!("## {label}: ")).unwrap_or_else(|| panic!("no section for {label}:\n{table}"));
    let section = &table[start..];
    let lines: Vec<&str> =
        section.lines().skip_while(|l| !l.starts_with("| train | test |")).take_while(|l| l.starts_with('|')).collect();
    let cells = |l: &'a str| l.split('|').map(str::trim).filter(|c| !c.is_empty()).collect::<Vec<_>>();
    let header = cells(lines[0]);
    lines[2..].iter().map(|l| header.iter().copied().zip(cells(l)).collect()).collect()
}

#[test]
fn predictor_study_learning_curves_on_every_real_dataset() {
    let dir = std::env::temp_dir().join(format!("hwnas-exp-study-{}", std::process::id()));
    let shared = shared();
    let args =
        ["experiments", "run", "predictor-study", "--shared", shared.to_str().unwrap(), "--out", dir.to_str().unwrap()];
    // An own dataset (as `hwnas profile` writes them: a `space` column) of 15 architectures:
    // only the sizes below 15 run.
    std::fs::create_dir_all(&dir).unwrap();
    let pixel3 = std::fs::read_to_string(shared.join("data/hw-nas-bench-fbnet/fbnet_cifar100_pixel3.csv")).unwrap();
    let own: Vec<String> = pixel3.lines().skip(1).take(15).map(|l| l.replacen(',', ",fbnet-cifar100,", 1)).collect();
    let own_csv = dir.join("own.csv");
    std::fs::write(&own_csv, format!("arch,space,latency_ms\n{}\n", own.join("\n"))).unwrap();
    let quick = ["--sizes", "10,20", "--seeds", "1", "--families", "auto,lut,flops,flops+memory"];
    let out = hwnas(&[&args[..], &quick, &["--data", own_csv.to_str().unwrap()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("table.md")).unwrap(), table);
    let labels =
        ["pixel3", "raspi4", "pixel2", "samsung_a50", "2080ti-b32", "2080ti-b64", "titan_rtx-b32", "titan_rtx-b64"];
    for label in labels {
        let rows = spearman_table(&table, label);
        let get = |row: &[(&str, &str)], col: &str| -> f64 {
            let v = row.iter().find(|(h, _)| *h == col).unwrap_or_else(|| panic!("{label}: no column {col}")).1;
            v.parse().unwrap_or_else(|_| panic!("{label} {col}: `{v}` is not a number\n{table}"))
        };
        let sizes: Vec<&str> = rows.iter().map(|r| r[0].1).collect();
        assert_eq!(sizes, ["10", "20"], "{label}");
        for row in &rows {
            // 5,000 architectures each: all the others are held out.
            assert_eq!(get(row, "test") as usize + get(row, "train") as usize, 5000, "{label}");
            let (auto, fm) = (get(row, "auto"), get(row, "flops+memory"));
            for col in ["auto", "lut", "flops", "flops+memory"] {
                let r = get(row, col);
                assert!(r > 0.5 && r <= 1.0, "{label} {col}: ρ {r}");
            }
            assert!(auto >= fm - 0.05, "{label} at {}: auto ρ {auto} vs flops+memory {fm}", row[0].1);
        }
        assert!(dir.join(label).join("spearman.png").exists(), "{label}/spearman.png missing");
        assert!(dir.join(label).join("auto_scatter.png").exists(), "{label}/auto_scatter.png missing");
    }
    // Exactly additive tables: the shrunk table beats counting MACs and bytes from 20 networks.
    let p3 = spearman_table(&table, "pixel3");
    let at20: std::collections::HashMap<_, _> = p3[1].iter().copied().collect();
    let auto: f64 = at20["auto"].parse().unwrap();
    assert!(auto > 0.98 && auto > at20["flops+memory"].parse::<f64>().unwrap() + 0.02, "{p3:?}");
    // MACs rank the batch-64 Titan RTX networks almost perfectly; auto must not lose that.
    let t64 = spearman_table(&table, "titan_rtx-b64");
    assert!(t64[1].iter().find(|c| c.0 == "auto").unwrap().1.parse::<f64>().unwrap() > 0.99, "{t64:?}");
    let own = spearman_table(&table, "own");
    assert_eq!(own.iter().map(|r| r[0].1).collect::<Vec<_>>(), ["10"], "{table}");
    assert_eq!(own[0][1], ("test", "5"));
    assert!(table.contains("Sizes 20 skipped"), "{table}");
    assert!(dir.join("own/spearman.png").exists());
    assert!(!table.contains("| kernel") && !table.contains(" mlp |"), "--families keeps only the named columns");
    std::fs::remove_dir_all(&dir).unwrap();
}
