//! Lookup-table files: round trip, envelope checks, missing keys and the fallback policy.

use predictors::lut::{Entry, LutPredictor};
use predictors::{document, load_predictor, LatencyPredictor, PredictError};
use spaces::SearchSpace;

fn space() -> Box<dyn SearchSpace> {
    spaces::space("fbnet-cifar100").unwrap()
}

/// A table with one entry per layer of the space at its resolution, valued by MACs.
fn full_table() -> LutPredictor {
    let layers = space().layer_table(&[32]);
    let entries = layers
        .iter()
        .map(|l| Entry {
            key: l.key(),
            ms: 0.01 + l.macs() as f64 / 1e7,
            macs: Some(l.macs()),
            memory_bytes: Some(l.memory_bytes()),
        })
        .collect();
    LutPredictor::from_entries("test", entries, vec![]).unwrap()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hwnas-predictors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn lut_round_trips_and_predicts_the_sum() {
    let s = space();
    let lut = full_table();
    let g = s.sample(&mut rand::rng());
    let net = s.network(&g);
    let want: f64 = net.layers.iter().filter(|l| l.is_timed()).map(|l| 0.01 + l.macs() as f64 / 1e7).sum();
    assert!((lut.predict_ms(&net).unwrap() - want).abs() < 1e-12);
    let path = tmp("lut.json");
    lut.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"format\": \"hwnas-predictor\"") && text.contains("\"version\": 1"));
    let back = load_predictor(&path).unwrap();
    assert_eq!(back.family(), "lut");
    assert_eq!(back.predict_ms(&net).unwrap(), lut.predict_ms(&net).unwrap());
    let again = LutPredictor::load(&path).unwrap();
    assert_eq!(again.entries(), lut.entries());
}

#[test]
fn missing_key_errors_or_falls_back_per_policy() {
    let s = space();
    let mut lut = full_table();
    let big = s.network(&s.extremes().1);
    // Drop one key the largest network uses.
    let victim = big.layers.iter().find(|l| l.macs() > 0 && l.name.starts_with("stage3")).unwrap().clone();
    let entries: Vec<Entry> = lut.entries().iter().filter(|e| e.key != victim.key()).cloned().collect();
    let mut cut = LutPredictor::from_entries("test", entries, vec![]).unwrap();
    match cut.predict_ms(&big) {
        Err(PredictError::MissingKey { key, .. }) => assert_eq!(key, victim.key()),
        other => panic!("expected a missing-key error, got {other:?}"),
    }
    cut.set_fallback("macs-linear").unwrap();
    let fallback = cut.predict_ms(&big).unwrap();
    lut.set_fallback("macs-linear").unwrap();
    // The table is exactly linear in MACs, so the fallback reproduces the dropped entry.
    assert!((fallback - lut.predict_ms(&big).unwrap()).abs() < 1e-6, "{fallback}");
    // The policy is recorded in the file.
    let path = tmp("fallback.json");
    cut.save(&path).unwrap();
    assert!(std::fs::read_to_string(&path).unwrap().contains("macs-linear"));
    assert!((load_predictor(&path).unwrap().predict_ms(&big).unwrap() - fallback).abs() < 1e-12);
    assert!(cut.set_fallback("nearest-guess").is_err());
}

#[test]
fn bad_envelopes_are_refused() {
    let path = tmp("bad.json");
    std::fs::write(&path, r#"{"format": "hwnas-predictor", "version": 2, "family": "lut", "entries": []}"#).unwrap();
    let e = load_predictor(&path).err().unwrap().to_string();
    assert!(e.contains("version"), "{e}");
    std::fs::write(&path, r#"{"format": "pickle", "version": 1, "family": "lut"}"#).unwrap();
    assert!(load_predictor(&path).is_err());
    std::fs::write(&path, r#"{"format": "hwnas-predictor", "version": 1, "family": "oracle"}"#).unwrap();
    assert!(load_predictor(&path).err().unwrap().to_string().contains("unknown predictor family"));
    std::fs::write(&path, r#"{"format": "hwnas-predictor", "version": 1, "family": "lut", "source": "x", "entries": [{"key": "a", "ms": 1.0}, {"key": "a", "ms": 2.0}]}"#).unwrap();
    assert!(document::read_any(&path).is_ok());
    assert!(load_predictor(&path).err().unwrap().to_string().contains("twice"));
}

#[test]
fn saving_into_a_missing_directory_creates_it() {
    let dir = tmp("fresh");
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("preds/pixel2.json");
    full_table().save(&path).unwrap();
    assert!(load_predictor(&path).is_ok());
}
