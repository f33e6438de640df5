//! `hwnas fit --import ofa-yaml` on OFA's published Note10 tables, through the binary: it
//! prints the smallest and largest member at each covered resolution and saves a predictor
//! that loads back with the same numbers.

use std::path::Path;
use std::process::Command;

#[test]
fn imports_the_note10_tables_as_published() {
    let note10 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ofa/note10");
    let dir = std::env::temp_dir().join(format!("hwnas-cli-ofa-yaml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_file = dir.join("note10.json");
    let out = Command::new(env!("CARGO_BIN_EXE_hwnas"))
        .args(["fit", "--import", "ofa-yaml", "--data", note10.to_str().unwrap(), "--space", "ofa-mbv3-w1.2"])
        .args(["--out", out_file.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("at resolutions 160, 176, 192, 208, 224"), "{stdout}");
    assert!(stdout.contains("at 224: smallest subnet 17.769 ms, largest 92.398 ms"), "{stdout}");
    assert!(!stdout.contains("at 128"), "{stdout}");
    let p = predictors::load_predictor(&out_file).unwrap();
    assert_eq!(p.resolutions_covered("ofa-mbv3-w1.2"), Some(vec![160, 176, 192, 208, 224]));
    let s = spaces::space("ofa-mbv3-w1.2").unwrap();
    let ms = p.predict_ms(&s.network_at(&s.extremes().1, 224)).unwrap();
    assert!((ms - 92.398).abs() < 5e-4, "{ms}");
    let _ = std::fs::remove_dir_all(&dir);
}
