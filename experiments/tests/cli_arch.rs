//! `hwnas spaces` / `hwnas arch …` end to end through the binary.

use serde_json::Value;
use std::process::{Command, Output};

fn hwnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hwnas")).args(args).output().expect("hwnas runs")
}

fn stats_json(args: &[&str]) -> (u64, u64) {
    let mut all = vec!["arch", "stats", "--json"];
    all.extend_from_slice(args);
    let out = hwnas(&all);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    (v["macs"].as_u64().unwrap(), v["params"].as_u64().unwrap())
}

fn write_arch(name: &str, json: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hwnas-cli-arch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, json).unwrap();
    path
}

#[test]
fn arch_stats_reproduces_the_oracles() {
    assert_eq!(stats_json(&["--preset", "mobilenetv2"]), (300_774_272, 3_504_872));
    assert_eq!(stats_json(&["--preset", "mobilenetv3-large"]), (216_589_760, 5_483_032));
    assert_eq!(stats_json(&["--preset", "mnasnet-a1"]), (311_579_072, 3_887_038));
    assert_eq!(stats_json(&["--preset", "spnasnet", "--space", "singlepath"]), (333_467_072, 4_421_616));
    assert_eq!(stats_json(&["--preset", "fbnet-a"]), (249_921_848, 4_321_464));
    assert_eq!(stats_json(&["--preset", "fbnet-b"]), (306_210_888, 4_863_288));
    assert_eq!(stats_json(&["--preset", "fbnet-c"]).0, 384_960_160);

    let largest = write_arch(
        "largest.json",
        &format!(r#"{{"ks": {:?}, "e": {:?}, "d": [4,4,4,4,4], "r": [224]}}"#, [7; 20], [6; 20]),
    );
    let smallest = write_arch(
        "smallest.json",
        &format!(r#"{{"ks": {:?}, "e": {:?}, "d": [2,2,2,2,2], "r": [224]}}"#, [3; 20], [3; 20]),
    );
    let (l, s) = (largest.to_str().unwrap(), smallest.to_str().unwrap());
    for (r, big, small) in [
        ("224", 566_170_656, 121_278_672),
        ("192", 417_292_160, 89_841_344),
        ("160", 291_318_048, 63_240_528),
        ("128", 188_248_320, 41_476_224),
    ] {
        assert_eq!(stats_json(&["--space", "ofa-mbv3-w1.0", "--arch", l, "--resolution", r]), (big, 7_664_760));
        assert_eq!(stats_json(&["--space", "ofa-mbv3-w1.0", "--arch", s, "--resolution", r]), (small, 3_410_792));
    }
    assert_eq!(stats_json(&["--space", "ofa-mbv3-w1.2", "--arch", l]), (843_101_040, 10_701_632));
    assert_eq!(stats_json(&["--space", "ofa-mbv3-w1.2", "--arch", s]), (193_078_200, 4_602_456));
}

fn fails_with(args: &[&str], needle: &str) {
    let out = hwnas(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(err.contains(needle), "{args:?}: stderr {err:?} lacks {needle:?}");
}

#[test]
fn bad_architecture_files_exit_non_zero_naming_the_field() {
    let bad_json = write_arch("bad.json", "{\"ks\": [3, 5,");
    fails_with(&["arch", "stats", "--space", "ofa-mbv3-w1.0", "--arch", bad_json.to_str().unwrap()], "not valid JSON");
    let short = write_arch("short.json", r#"{"ks": [3], "e": [3], "d": [2,2,2,2,2]}"#);
    fails_with(
        &["arch", "stats", "--space", "ofa-mbv3-w1.0", "--arch", short.to_str().unwrap()],
        "field `ks`: expected 20 entries, got 1",
    );
    let out_of_space = write_arch(
        "oos.json",
        r#"{"ops": "k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k7_e1"}"#,
    );
    fails_with(
        &["arch", "stats", "--space", "fbnet-cifar100", "--arch", out_of_space.to_str().unwrap()],
        "field `ops[21]`: k7_e1 is not one of",
    );
    fails_with(&["arch", "stats", "--space", "nope", "--arch", short.to_str().unwrap()], "unknown space `nope`");
    fails_with(&["arch", "stats", "--preset", "mnasnet-a1", "--space", "mnasnet"], "belongs to space `blocks`");
    fails_with(
        &["arch", "stats", "--space", "fbnet", "--arch", "/does/not/exist.json"],
        "cannot read /does/not/exist.json",
    );
    fails_with(&["arch", "sample", "--space", "blocks"], "not a search space");
}

#[test]
fn sampled_architectures_are_valid_json_lines_and_reproducible() {
    for space in spaces::SPACE_NAMES {
        let out = hwnas(&["arch", "sample", "--space", space, "-n", "5", "--seed", "11"]);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), 5);
        let s = spaces::space(space).unwrap();
        for line in text.lines() {
            let g = s.parse(line).unwrap_or_else(|e| panic!("{space}: {line}: {e}"));
            s.check(&g).unwrap();
        }
        let again = hwnas(&["arch", "sample", "--space", space, "-n", "5", "--seed", "11"]);
        assert_eq!(String::from_utf8(again.stdout).unwrap(), text, "{space}: same seed, same samples");
    }
}

#[test]
fn spaces_lists_every_space() {
    let out = hwnas(&["spaces", "--json"]);
    assert!(out.status.success());
    let names: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, spaces::SPACE_NAMES);
}

#[test]
fn arch_import_reads_a_published_ofa_net_config() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ofa/specialized");
    let net = dir.join("note10_lat-30ms_top1-78.4_finetune-75");
    let (config, run) = (net.join("net.config"), net.join("run.config"));
    let out_file = write_arch("imported.json", "");
    let out = hwnas(&[
        "arch",
        "import",
        "--ofa-net-config",
        config.to_str().unwrap(),
        "--run-config",
        run.to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("ofa-mbv3-w1.2 at resolution 224") && err.contains("params"), "{err}");
    let arch: Value = serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    let space = spaces::space("ofa-mbv3-w1.2").unwrap();
    // specialized.csv's arch for this network (inactive slots hold 3 there).
    let listed = space
        .parse(r#"{"ks":[3,3,3,3,5,3,3,3,5,5,3,3,3,3,3,3,3,3,3,3],"e":[3,3,3,3,4,3,4,3,4,4,3,3,6,4,4,3,6,6,4,3],"d":[2,3,3,3,4],"r":[224]}"#)
        .unwrap();
    assert_eq!(space.from_json(&arch).unwrap(), listed);
    assert_eq!(arch["space"], "ofa-mbv3-w1.2");
    stats_json(&["--space", "ofa-mbv3-w1.2", "--arch", out_file.to_str().unwrap()]);

    // Run at 236 by OFA: refused naming the size and the range, importable with --resolution.
    let wide = dir.join("flops-595M_top1-80.0_finetune-75");
    let (config, run) = (wide.join("net.config"), wide.join("run.config"));
    let args = ["arch", "import", "--ofa-net-config", config.to_str().unwrap(), "--run-config", run.to_str().unwrap()];
    fails_with(&args, "resolution 236 is not one of ofa-mbv3-w1.2's input sizes (128-224 step 4)");
    fails_with(&args, "--resolution R overrides it");
    let out = hwnas(&[&args[..], &["--resolution", "224"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let arch: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(arch["r"], serde_json::json!([224]));
}
